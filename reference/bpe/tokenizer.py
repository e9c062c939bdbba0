"""Encoding and decoding with a byte-level BPE vocabulary (GPT-2 style).

``encode(text)``:

1. split out the special tokens (each becomes its own id) and cut the rest into GPT-2 pre-tokens;
2. each pre-token starts as its UTF-8 bytes, one token per byte;
3. apply the merges **by rank**: repeatedly take the adjacent pair with the lowest rank (the earliest
   learned merge) and replace all its occurrences, left to right without overlap, until no pair of the
   merge list is left;
4. map each token's bytes to its id.

``decode(ids)`` joins the tokens' bytes and decodes them as UTF-8; invalid sequences (a token list cut
inside a character, or ids chosen at random) become U+FFFD, one per maximal invalid subpart (Python's
``errors="replace"``). ``decode(encode(s)) == s`` for every ``str`` whose characters are Unicode scalar
values. A lone surrogate (U+D800..U+DFFF, which ``str`` can hold) has no UTF-8 form: ``encode`` raises
``ValueError`` for it (a ``UnicodeEncodeError``) rather than guess.

Worked example, with the merges (b" ", b"t"), (b"h", b"e"), (b" t", b"he") learned in that order::

    " the" -> b" ", b"t", b"h", b"e" -> b" t", b"h", b"e" -> b" t", b"he" -> b" the"

``encode_iterable(lines)`` encodes a stream (a file opened as text yields its lines) in memory bounded by
the longest pre-token: it holds back only the tail of the text that more input could still change (the
last pre-tokens, and any prefix of a special token), so its ids equal ``encode("".join(lines))`` for any
way of cutting the text into chunks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence

from fmspec.reference.bpe import files
from fmspec.reference.bpe.pairs import merge
from fmspec.reference.bpe.pretokenize import check_special_tokens, pretokenize, split_specials

_CACHE_LIMIT = 1 << 16
# the GPT-2 pattern decides a pre-token by looking at most 3 characters ahead ("'ll" after "'")
_PATTERN_LOOKAHEAD = 3


class Tokenizer:
    """A byte-level BPE tokenizer: ``Tokenizer(vocab, merges, special_tokens).encode("hi")``.

    ``vocab`` maps ids to token bytes and must hold the 256 single bytes and every merge's result;
    ``merges`` is in rank order. A special token missing from ``vocab`` gets the next free id.
    """

    def __init__(self, vocab: Mapping[int, bytes], merges: Sequence[tuple[bytes, bytes]],
                 special_tokens: Sequence[str] | None = ()):
        if not isinstance(vocab, Mapping):
            raise TypeError(f"vocab must be a mapping int -> bytes, got {type(vocab).__name__}")
        self.vocab: dict[int, bytes] = {}
        for i, tok in vocab.items():
            if not isinstance(i, int) or isinstance(i, bool) or not isinstance(tok, bytes) or not tok:
                raise TypeError(f"vocab must map int ids to non-empty bytes, got {i!r}: {tok!r}")
            self.vocab[i] = tok
        self.ids = {tok: i for i, tok in self.vocab.items()}  # bytes -> id
        if len(self.ids) != len(self.vocab):
            raise ValueError("vocab has two ids for the same token")
        missing = [b for b in range(256) if bytes([b]) not in self.ids]
        if missing:
            raise ValueError(f"vocab lacks {len(missing)} single bytes (first: {bytes([missing[0]])!r}); "
                             "byte-level BPE needs all 256")
        self.merges = list(merges)
        self.ranks: dict[tuple[bytes, bytes], int] = {}
        for pair in self.merges:
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(t, bytes) for t in pair)):
                raise TypeError(f"merges must hold (bytes, bytes) pairs, got {pair!r}")
            if pair[0] + pair[1] not in self.ids:
                raise ValueError(f"merges: the result of {pair!r} is not in vocab")
            self.ranks.setdefault(pair, len(self.ranks))
        self.special_tokens = check_special_tokens(special_tokens or ())
        for s in self.special_tokens:
            tok = s.encode("utf-8")
            if tok not in self.ids:
                new = max(self.vocab) + 1
                self.vocab[new], self.ids[tok] = tok, new
        self._cache: dict[bytes, list[int]] = {}

    @classmethod
    def from_files(cls, vocab_path: str | os.PathLike, merges_path: str | os.PathLike,
                   special_tokens: Sequence[str] | None = ()) -> "Tokenizer":
        """A tokenizer from GPT-2's ``vocab.json`` and ``merges.txt`` (see ``files.py``)."""
        vocab, merges = files.load(vocab_path, merges_path)
        return cls(vocab, merges, special_tokens)

    # ------------------------------------------------------------------------------------------ encode
    def encode(self, text: str) -> list[int]:
        """The ids of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        ids: list[int] = []
        for piece, is_special in split_specials(text, self.special_tokens):
            if is_special:
                ids.append(self.ids[piece.encode("utf-8")])
                continue
            for pretoken in pretokenize(piece):
                ids += self._encode_pretoken(pretoken)
        return ids

    def _encode_pretoken(self, pretoken: str) -> list[int]:
        try:
            raw = pretoken.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"text holds a lone surrogate {pretoken[exc.start]!r} at a position in {pretoken!r}: "
                             "it has no UTF-8 form") from exc
        cached = self._cache.get(raw)
        if cached is not None:
            return cached
        parts = [raw[i:i + 1] for i in range(len(raw))]  # one token per byte
        ranks = self.ranks
        while len(parts) > 1:
            known = ranks.keys() & zip(parts, parts[1:])  # the adjacent pairs that are merges
            if not known:
                break
            pair = min(known, key=ranks.__getitem__)  # the lowest rank first
            parts = merge(parts, pair, pair[0] + pair[1])
        ids = [self.ids[t] for t in parts]
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[raw] = ids
        return ids

    def encode_iterable(self, lines: Iterable[str]) -> Iterator[int]:
        """The ids of ``"".join(lines)``, produced as the chunks arrive."""
        if isinstance(lines, (str, bytes)):
            raise TypeError("lines must be an iterable of str (a file, a list of lines), not a single str")
        hold = max([_PATTERN_LOOKAHEAD] + [len(s) for s in self.special_tokens])
        buffer = ""
        for chunk in lines:
            if not isinstance(chunk, str):
                raise TypeError(f"lines must yield str, got {type(chunk).__name__}")
            buffer += chunk
            cut = self._final_prefix(buffer, hold)
            if cut:
                yield from self.encode(buffer[:cut])
                buffer = buffer[cut:]
        if buffer:
            yield from self.encode(buffer)

    def _final_prefix(self, buffer: str, hold: int) -> int:
        """The longest prefix of ``buffer``, ending at a piece boundary, that more text cannot change.

        A pre-token's extent depends on at most 3 characters after it, and a special token not yet complete
        starts within ``len(longest special)`` characters of the end: pieces ending at least ``hold``
        characters before the end are final.
        """
        limit, cut, pos = len(buffer) - hold, 0, 0
        for piece, is_special in split_specials(buffer, self.special_tokens):
            for part in ([piece] if is_special else pretokenize(piece)):
                pos += len(part)
                if pos > limit:
                    return cut
                cut = pos
        return cut

    # ------------------------------------------------------------------------------------------ decode
    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``; invalid UTF-8 becomes U+FFFD."""
        if isinstance(ids, (str, bytes)):
            raise TypeError(f"ids must be a sequence of int, got {type(ids).__name__}")
        out = []
        for i in ids:
            if not isinstance(i, int) or isinstance(i, bool):
                raise TypeError(f"ids must hold int, got {type(i).__name__} {i!r}")
            tok = self.vocab.get(i)
            if tok is None:
                raise ValueError(f"ids: unknown id {i} (vocab has {len(self.vocab)} ids)")
            out.append(tok)
        return b"".join(out).decode("utf-8", errors="replace")

