"""Byte-level BPE training, GPT-2 style (Radford et al., 2019): the algorithm of seed 004 on bytes.

The base vocabulary is the 256 byte values (ids 0..255, id = byte value), then the special tokens
(ids 256..), then one token per merge, in the order learned. ``vocab_size`` counts all three.

    1. cut the text into pre-tokens (``pretokenize.py``): special tokens out, then the GPT-2 pattern;
       count each distinct pre-token; each is a word of byte ids (b" the" -> [32, 116, 104, 101]);
    2. count every adjacent pair of ids, weighted by the pre-token's count ("aaa" holds (a, a) twice);
    3. merge the most frequent pair into a new id; **ties go to the lexicographically greater pair of byte
       strings** (compare the first tokens' bytes, then the second's: (b"t", b"h") > (b" ", b"t"));
       occurrences are replaced left to right without overlap;
    4. repeat from 2 until the vocabulary has ``vocab_size`` entries, or no pair is left.

Steps 2 and 3 are ``get_stats`` and ``merge`` (``pairs.py``), as in minbpe's ``basic.py``/``regex.py``
(Karpathy, 2024), with GPT-2's pre-tokenization, special tokens and tie rule added. Like the lecture, this
trainer counts every pair again after every merge: O(corpus) per merge, clear and slow (seconds for a few
hundred merges on 0.1 MB). ``training_fast.py`` learns the same merges by keeping the counts up to date;
``bpe.train`` is that one, and ``tests/test_bpe_trainers.py`` holds the two equal.

Worked example: on ``"low low lower"`` the pre-tokens are b"low" (1), b" low" (1), b" lower" (1); the pairs
(l, o) and (o, w) occur 3 times each, (o, w) > (l, o), so the first merge is (b"o", b"w") -> id 256, then
(b"l", b"ow") -> id 257::

    words [108, 111, 119] [32, 108, 111, 119] [32, 108, 111, 119, 101, 114]
    ->    [108, 256]      [32, 108, 256]      [32, 108, 256, 101, 114]
    ->    [257]           [32, 257]           [32, 257, 101, 114]
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from fmspec.reference.bpe.pairs import get_stats, merge
from fmspec.reference.bpe.pretokenize import check_special_tokens, pretoken_counts


def read_text(text: str | os.PathLike) -> str:
    """``text`` itself if a str, else the UTF-8 contents of the file at that path."""
    if isinstance(text, str):
        return text
    if isinstance(text, os.PathLike):
        with open(text, encoding="utf-8") as f:
            return f.read()
    raise TypeError(f"text must be a str or a path (os.PathLike), got {type(text).__name__}")


def check_arguments(text: str | os.PathLike, vocab_size: int, special_tokens: Sequence[str]
                    ) -> tuple[str, tuple[str, ...]]:
    """The corpus as a str and the special tokens as a tuple; TypeError or ValueError naming a bad argument."""
    text = read_text(text)
    specials = check_special_tokens(special_tokens)
    base = 256 + len(specials)
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < base:
        raise ValueError(f"vocab_size={vocab_size} is below the base vocabulary: 256 bytes + {len(specials)} "
                         f"special tokens = {base}")
    if not text:
        raise ValueError("text is empty: nothing to train on")
    return text, specials


def base_vocab(specials: Sequence[str]) -> dict[int, bytes]:
    """Ids 0..255 for the bytes, then one per special token: ``("<|eot|>",)`` -> {0: b"\\x00", ..., 256: b"<|eot|>"}."""
    vocab = {i: bytes([i]) for i in range(256)}
    for s in specials:
        vocab[len(vocab)] = s.encode("utf-8")
    return vocab


def train(text: str | os.PathLike, vocab_size: int, special_tokens: Sequence[str] = ()
          ) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Learn a byte-level BPE vocabulary of ``vocab_size`` tokens: ``(vocab, merges)``."""
    text, specials = check_arguments(text, vocab_size, special_tokens)
    vocab = base_vocab(specials)  # id -> bytes
    counts = pretoken_counts([text], specials)  # {b" the": 812, ...}
    words = [list(pretoken) for pretoken in counts]  # b" the" -> [32, 116, 104, 101]: a byte's id is its value
    freqs = list(counts.values())
    merges: list[tuple[bytes, bytes]] = []
    while len(vocab) < vocab_size:
        stats: dict[tuple[int, int], int] = {}
        for ids, freq in zip(words, freqs):
            get_stats(ids, stats, freq)  # every pair, weighted by the pre-token's count
        if not stats:
            break  # every pre-token is a single token
        # the most frequent pair; among equals the greater pair of byte strings
        pair = max(stats, key=lambda p: (stats[p], vocab[p[0]], vocab[p[1]]))
        idx = len(vocab)
        vocab[idx] = vocab[pair[0]] + vocab[pair[1]]
        merges.append((vocab[pair[0]], vocab[pair[1]]))
        words = [merge(ids, pair, idx) for ids in words]
    return vocab, merges
