"""bpe: segment_word forgets the end-of-word symbol: "low" is segmented as l o w, never reaching low</w>."""

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.bpe.words import merge_symbols

COMPONENT = "bpe"
CAUGHT_BY = ["test_lecture_walkthrough", "test_lecture_example_vocabulary", "test_segment_word_applies_merges_by_rank"]


def segment_word(word, merges):
    if not isinstance(word, str):
        raise TypeError("word must be a str")
    ranks = {}
    for pair in merges:
        ranks.setdefault(tuple(pair), len(ranks))
    symbols = list(word)
    while len(symbols) > 1:
        present = [p for p in zip(symbols, symbols[1:]) if p in ranks]
        if not present:
            break
        symbols = merge_symbols(symbols, min(present, key=ranks.__getitem__))
    return symbols


bpe = patch(ref, segment_word=segment_word)
