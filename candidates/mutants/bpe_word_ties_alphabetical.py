"""bpe: word-level ties between equally frequent pairs go to the alphabetically smallest pair, not the first seen."""

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.bpe.words import count_pairs, merge_symbols, word_symbols

COMPONENT = "bpe"
CAUGHT_BY = ["test_lecture_example_merges", "test_lecture_example_vocabulary", "test_word_ties_go_to_first_occurrence"]


def train_words(word_counts, num_merges):
    ref.train_words(word_counts, 0)  # the argument checks
    if num_merges < 0:
        raise ValueError("num_merges must be >= 0")
    words = [word_symbols(w) for w in word_counts]
    freqs = list(word_counts.values())
    merges = []
    for _ in range(num_merges):
        counts = count_pairs(words, freqs)
        if not counts:
            break
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        words = [merge_symbols(s, best) for s in words]
    return merges


bpe = patch(ref, train_words=train_words)
