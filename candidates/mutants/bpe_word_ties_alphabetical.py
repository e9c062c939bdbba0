"""bpe: word-level ties between equally frequent pairs go to the alphabetically smallest pair, not the first seen."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.words as words_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_lecture_example_merges", "test_lecture_example_vocabulary", "test_word_ties_go_to_first_occurrence"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("pair = max(stats, key=stats.__getitem__)", "pair = min(stats, key=lambda p: (-stats[p], p))"),
]

bpe = patch(ref, train_words=edit_source(words_module, EDITS).train_words)
