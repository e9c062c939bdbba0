"""Word-level BPE with an end-of-word symbol, exactly as the lecture runs it (seed 004, "Byte Pair Encoding").

Sennrich et al. (2016). Every word is a sequence of characters followed by the end-of-word symbol ``</w>``
(which restores the word boundaries after decoding). Training repeats ``num_merges`` times:

1. count every adjacent symbol pair (a, b) over all words, weighted by word frequency; a run like
   ``a a a`` holds the pair (a, a) twice;
2. take the most frequent pair; **ties go to the pair that occurs first** when scanning the words in the
   mapping's order and each word's symbols left to right;
3. replace its occurrences, left to right and without overlap (``a a a`` -> ``aa a``), by the new symbol ``ab``.

Steps 1 and 3 are ``get_stats`` and ``merge`` (``pairs.py``), as in minbpe's ``basic.py``; the pairs are
counted again after every merge, as the lecture does. The vocabulary is the initial characters plus
``</w>``, plus one symbol per merge. Training stops early if
no pair is left (every word is one symbol).

Worked example (the lecture's 10 merges)::

    word_counts = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
    vocabulary  = l o w </w> e r n s t i d                                  (11 symbols)
    step 1: (e, s) 9 ties with (s, t) 9 and (t, </w>) 9; (e, s) occurs first, in "n e w e s t </w>"
    merges: es, est, est</w>, lo, low, ne, new, newest</w>, low</w>, wi
    words:  low</w> (5)   low e r </w> (2)   newest</w> (6)   wi d est</w> (3)

Segmenting a new word applies the learned merges by rank: repeatedly take the pair of lowest rank (earliest
learned) present in the word and merge all its occurrences, until no learned pair is left. The lecture's
walk-through with its 19 merges (``A b``, ``a s``, ``e r``, ``s er``, ...)::

    segment_word("Abwasserbehandlungsanlage", merges)
    -> Abwasser b e han dlung s an lag e </w>           (ten subtokens)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fmspec.reference.bpe.pairs import get_stats, merge

END_OF_WORD = "</w>"


def word_symbols(word: str) -> list[str]:
    """``"low"`` -> ``["l", "o", "w", "</w>"]``."""
    return list(word) + [END_OF_WORD]


def train_words(word_counts: Mapping[str, int], num_merges: int) -> list[tuple[str, str]]:
    """Learn up to ``num_merges`` merges from word frequencies; the merges in the order learned."""
    if not isinstance(word_counts, Mapping):
        raise TypeError(f"word_counts must be a mapping str -> int, got {type(word_counts).__name__}")
    if not word_counts:
        raise ValueError("word_counts is empty: nothing to learn from")
    for word, n in word_counts.items():
        if not isinstance(word, str) or not word:
            raise ValueError(f"word_counts: every word must be a non-empty str, got {word!r}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"word_counts: the count of {word!r} must be an int >= 1, got {n!r}")
    if not isinstance(num_merges, int) or isinstance(num_merges, bool) or num_merges < 0:
        raise ValueError(f"num_merges must be an int >= 0, got {num_merges!r}")

    words = [word_symbols(w) for w in word_counts]  # "low" -> ["l", "o", "w", "</w>"]
    freqs = list(word_counts.values())
    merges: list[tuple[str, str]] = []
    for _ in range(num_merges):
        stats: dict[tuple[str, str], int] = {}
        for symbols, freq in zip(words, freqs):
            get_stats(symbols, stats, freq)  # every pair, weighted by the word's count, in order of first occurrence
        if not stats:
            break  # every word is a single symbol
        pair = max(stats, key=stats.__getitem__)  # max keeps the first of equals: ties to the first occurrence
        merges.append(pair)
        words = [merge(symbols, pair, pair[0] + pair[1]) for symbols in words]
    return merges


def segment_word(word: str, merges: Sequence[tuple[str, str]]) -> list[str]:
    """Split ``word`` into the symbols the learned ``merges`` give it (the last one ends with ``</w>``)."""
    if not isinstance(word, str):
        raise TypeError(f"word must be a str, got {type(word).__name__}")
    if not word:
        raise ValueError("word must be a non-empty str")
    ranks = {}
    for pair in merges:
        if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(s, str) for s in pair)):
            raise TypeError(f"merges must hold (str, str) pairs, got {pair!r}")
        ranks.setdefault(pair, len(ranks))  # a repeated merge keeps its first rank
    symbols = word_symbols(word)
    while len(symbols) > 1:
        present = [p for p in zip(symbols, symbols[1:]) if p in ranks]
        if not present:
            break
        pair = min(present, key=ranks.__getitem__)  # the earliest learned
        symbols = merge(symbols, pair, pair[0] + pair[1])
    return symbols
