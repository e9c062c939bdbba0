"""bpe: word-level and byte-level Byte Pair Encoding. Spec: docs/spec/bpe.md.

Word level (the lecture): words are characters plus the end-of-word symbol "</w>". Byte level (GPT-2
style): the 256 bytes, GPT-2 regex pre-tokenization, special tokens split out first and never merged.
Pairs are counted at every adjacent position ("aaa" holds (a, a) twice); a merge replaces occurrences
left to right without overlap. Bad arguments raise ValueError or TypeError naming the argument.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence


def train_words(word_counts: Mapping[str, int], num_merges: int) -> list[tuple[str, str]]:
    """Learn up to ``num_merges`` merges from word frequencies (words as characters + "</w>").

    Ties between equally frequent pairs go to the pair that occurs first (words in the mapping's order,
    symbols left to right). Stops early when no pair is left. The lecture's {low: 5, lower: 2, newest: 6,
    widest: 3} with 10 merges gives es, est, est</w>, lo, low, ne, new, newest</w>, low</w>, wi.
    """
    raise NotImplementedError("bpe.train_words")


def segment_word(word: str, merges: Sequence[tuple[str, str]]) -> list[str]:
    """The symbols of ``word`` + "</w>" after applying ``merges`` by rank: repeatedly merge every occurrence
    of the lowest-ranked pair present, until none is left."""
    raise NotImplementedError("bpe.segment_word")


def train(text: str | os.PathLike, vocab_size: int, special_tokens: Sequence[str] = ()
          ) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Byte-level BPE: ``(vocab, merges)``. ``text`` is the corpus (a str) or a path to a UTF-8 file.

    ``vocab_size`` counts the 256 bytes, the special tokens and the merges. Ties go to the
    lexicographically greater pair of byte strings. Vocab ids: bytes 0..255 (id = byte value), then the
    specials, then the merges in order. Stops early (fewer merges) when no pair is left.
    """
    raise NotImplementedError("bpe.train")


def save(vocab: Mapping[int, bytes], merges: Sequence[tuple[bytes, bytes]],
         vocab_path: str | os.PathLike, merges_path: str | os.PathLike) -> None:
    """Write GPT-2's ``vocab.json`` ({token text: id}) and ``merges.txt`` (one "a b" a line), tokens shown
    through GPT-2's byte-to-unicode table."""
    raise NotImplementedError("bpe.save")


class Tokenizer:
    """Encode and decode with a byte-level vocabulary ``{id: bytes}`` and ``merges`` in rank order. An empty or
    repeated special token raises ValueError naming ``special_tokens``."""

    def __init__(self, vocab: Mapping[int, bytes], merges: Sequence[tuple[bytes, bytes]],
                 special_tokens: Sequence[str] | None = ()):
        raise NotImplementedError("bpe.Tokenizer")

    @classmethod
    def from_files(cls, vocab_path: str | os.PathLike, merges_path: str | os.PathLike,
                   special_tokens: Sequence[str] | None = ()) -> "Tokenizer":
        """Read GPT-2's ``vocab.json`` and ``merges.txt`` (an optional ``#version`` first line). A file not in
        that format raises ValueError naming ``vocab_path`` or ``merges_path``."""
        raise NotImplementedError("bpe.Tokenizer.from_files")

    def encode(self, text: str) -> list[int]:
        """Specials split out first (longest first), then GPT-2 pre-tokens, merges applied by rank.
        A lone surrogate raises ValueError."""
        raise NotImplementedError("bpe.Tokenizer.encode")

    def decode(self, ids: Sequence[int]) -> str:
        """The tokens' bytes joined and decoded as UTF-8, invalid sequences -> U+FFFD; unknown id -> ValueError."""
        raise NotImplementedError("bpe.Tokenizer.decode")

    def encode_iterable(self, lines: Iterable[str]) -> Iterator[int]:
        """The ids of ``"".join(lines)``, for any way the text is cut into chunks, yielded as the chunks
        arrive: the first ids come before an endless iterable (a file read line by line) ends, so never join
        it all first."""
        raise NotImplementedError("bpe.Tokenizer.encode_iterable")
