"""bpe: train_words accepts a negative num_merges (range(-1) is empty: no merges and no error)."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.words as words_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_word_level_bad_arguments_raise"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("or isinstance(num_merges, bool) or num_merges < 0:", "or isinstance(num_merges, bool):"),
]

bpe = patch(ref, train_words=edit_source(words_module, EDITS).train_words)
