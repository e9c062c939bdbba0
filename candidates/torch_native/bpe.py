"""bpe from HF ``tokenizers``: its BPE model (ranked merges), ByteLevel pre-tokenizer and decoder, added tokens.

What users would otherwise reach for. Where the library's semantics differ from the contract, the
function is left out (it shows as *missing*):

- ``train_words`` and ``train``: left out. ``BpeTrainer`` breaks ties between equally frequent pairs by
  its internal token ids (ids given to the initial alphabet in sorted order, then to merges as created),
  not by first occurrence (word level) nor by the greater pair of byte strings (byte level); and its
  ``end_of_word_suffix`` glues ``</w>`` onto the last character (``t</w>``) instead of keeping it as a
  symbol of its own, so the lecture's merge ``(est, </w>)`` cannot arise.
- ``segment_word``: the lecture's ``</w>`` is a symbol of its own, so it is carried through HF's BPE model
  as one private-use character (U+E000) appended to the word; a word that itself holds U+E000 is refused.
- ``Tokenizer.encode``: HF rejects a str holding a lone surrogate with ``TypeError``; the contract says
  ``ValueError``, so the text is checked first.
- ``Tokenizer.decode``: HF silently skips unknown ids and, by default, special tokens; here unknown ids raise
  and specials are kept (``skip_special_tokens=False``).
- ``Tokenizer.encode_iterable``: HF has no streaming encoder. Here the chunks are gathered in a buffer whose
  final pieces (special tokens, and HF's ByteLevel pre-tokens of the text between them) are encoded as they
  arrive: a piece is final once it ends more than 3 characters (the pattern's look-ahead) and more than the
  longest special token's length before the end of the buffer.
- ``Tokenizer`` and ``from_files`` check their arguments (empty or repeated special tokens, files not in
  GPT-2's format) before HF sees them: HF deduplicates special tokens silently.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence

from tokenizers import AddedToken
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers

_END = "</w>"
_LOOKAHEAD = 3  # the GPT-2 pattern decides a pre-token by looking at most 3 characters ahead ("'ll")
_END_CHAR = "\ue000"  # stands for </w> inside HF's model


def segment_word(word: str, merges: Sequence[tuple[str, str]]) -> list[str]:
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__}")
    if not word or _END_CHAR in word:
        raise ValueError(f"word must be a non-empty str without U+E000, got {word!r}")
    as_hf = [(a.replace(_END, _END_CHAR), b.replace(_END, _END_CHAR)) for a, b in merges]
    vocab: dict[str, int] = {}
    for token in [*word, _END_CHAR, *(t for a, b in as_hf for t in (a, b, a + b))]:
        vocab.setdefault(token, len(vocab))
    model = models.BPE(vocab=vocab, merges=as_hf)
    return [t.value.replace(_END_CHAR, _END) for t in model.tokenize(word + _END_CHAR)]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (HF's ByteLevel alphabet)."""
    keep = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    table = {b: chr(b) for b in keep}
    table.update({b: chr(0x100 + k) for k, b in enumerate(b for b in range(256) if b not in keep)})
    return table


_B2U = _bytes_to_unicode()
_U2B = {c: b for b, c in _B2U.items()}


def _text(token: bytes) -> str:
    return "".join(_B2U[b] for b in token)


class Tokenizer:
    """A byte-level BPE tokenizer backed by an HF ``tokenizers.Tokenizer``."""

    def __init__(self, vocab: Mapping[int, bytes], merges: Sequence[tuple[bytes, bytes]],
                 special_tokens: Sequence[str] | None = ()):
        self.vocab = dict(vocab)
        specials = list(special_tokens or ())
        if any(not isinstance(s, str) or not s for s in specials):
            raise ValueError(f"special_tokens must be non-empty str, got {specials!r}")
        if len(set(specials)) != len(specials):
            raise ValueError(f"special_tokens has duplicates: {specials!r}")
        self._specials = specials
        # leftmost, and of those starting at one place the longest (as HF matches added tokens)
        longest_first = sorted(specials, key=len, reverse=True)
        self._special_re = re.compile("|".join(map(re.escape, longest_first))) if specials else None
        ids = {t: i for i, t in self.vocab.items()}
        for s in specials:  # a special token missing from vocab gets the next free id
            token = s.encode("utf-8")
            if token not in ids:
                ids[token] = max(self.vocab) + 1
                self.vocab[ids[token]] = token
        model = models.BPE(vocab={_text(t): i for i, t in self.vocab.items()},
                           merges=[(_text(a), _text(b)) for a, b in merges])
        self._hf = self._wrap(model, specials)

    @staticmethod
    def _wrap(model, specials) -> HFTokenizer:
        tok = HFTokenizer(model)
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
        return tok

    @classmethod
    def from_files(cls, vocab_path: str | os.PathLike, merges_path: str | os.PathLike,
                   special_tokens: Sequence[str] | None = ()) -> "Tokenizer":
        with open(vocab_path, encoding="utf-8") as f:
            as_text = json.load(f)
        if not isinstance(as_text, dict):
            raise ValueError(f"vocab_path: {os.fspath(vocab_path)!r} does not hold a JSON object token -> id")
        vocab = {i: bytes(_U2B[c] for c in tok) for tok, i in as_text.items()}
        merges = []
        with open(merges_path, encoding="utf-8") as f:
            for n, line in enumerate(f):
                line = line.rstrip("\r\n")
                if line and not (n == 0 and line.startswith("#version")):
                    parts = line.split(" ")
                    if len(parts) != 2:
                        raise ValueError(f"merges_path: line {n + 1} is not two tokens separated by one space: {line!r}")
                    merges.append(tuple(bytes(_U2B[c] for c in t) for t in parts))
        return cls(vocab, merges, special_tokens)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        text.encode("utf-8")  # a lone surrogate: UnicodeEncodeError, a ValueError
        return self._hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        ids = list(ids)
        for i in ids:
            if not isinstance(i, int) or isinstance(i, bool):
                raise TypeError(f"ids must hold int, got {i!r}")
            if i not in self.vocab:
                raise ValueError(f"ids: unknown id {i}")
        return self._hf.decode(ids, skip_special_tokens=False)

    def encode_iterable(self, lines: Iterable[str]) -> Iterator[int]:
        hold = max([_LOOKAHEAD] + [len(s) for s in self._specials])
        buffer = ""
        for chunk in lines:
            buffer += chunk
            cut = self._final_prefix(buffer, hold)
            if cut:
                yield from self.encode(buffer[:cut])
                buffer = buffer[cut:]
        if buffer:
            yield from self.encode(buffer)

    def _final_prefix(self, buffer: str, hold: int) -> int:
        """The longest prefix of ``buffer`` ending at a piece boundary at least ``hold`` characters before its end."""
        cut = 0
        for end in self._piece_ends(buffer):
            if end > len(buffer) - hold:
                break
            cut = end
        return cut

    def _piece_ends(self, text: str) -> Iterator[int]:
        """Where each special token and each HF pre-token of the text between them ends, in order."""
        pos = 0
        for m in self._special_re.finditer(text) if self._special_re else ():
            yield from (pos + end for _, (_, end) in self._hf.pre_tokenizer.pre_tokenize_str(text[pos:m.start()]))
            yield m.end()
            pos = m.end()
        yield from (pos + end for _, (_, end) in self._hf.pre_tokenizer.pre_tokenize_str(text[pos:]))


def save(vocab: Mapping[int, bytes], merges: Sequence[tuple[bytes, bytes]],
         vocab_path: str | os.PathLike, merges_path: str | os.PathLike) -> None:
    """GPT-2's format through HF: a BPE model saved by ``models.BPE.save``, renamed to the given paths."""
    import shutil
    import tempfile

    model = models.BPE(vocab={_text(t): i for i, t in vocab.items()}, merges=[(_text(a), _text(b)) for a, b in merges])
    with tempfile.TemporaryDirectory() as tmp:
        v, m = model.save(tmp)
        shutil.move(v, vocab_path)
        shutil.move(m, merges_path)
