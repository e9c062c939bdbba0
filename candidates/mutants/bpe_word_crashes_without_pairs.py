"""bpe: word-level training takes max() of the pair counts without checking that any pair is left, so it crashes instead of stopping early."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.words as words_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_word_training_stops_early_when_no_pair_is_left"]
EDITS = [  # the reference with these lines changed (the first occurrence of each: in train_words)
    ("        if not stats:\n            break  # every word is a single symbol\n", ""),
]

bpe = patch(ref, train_words=edit_source(words_module, EDITS).train_words)
