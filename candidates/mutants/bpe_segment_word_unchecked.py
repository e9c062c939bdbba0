"""bpe: segment_word does not check its word: segment_word(42, []) fails inside list() with "'int' object is not iterable", naming no argument."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.words as words_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_word_level_bad_arguments_raise"]
EDITS = [  # the reference with these lines changed (the first occurrence of each: in segment_word)
    ("    if not isinstance(word, str):\n        raise TypeError(f\"word must be a str, got {type(word).__name__}\")\n", ""),
]

bpe = patch(ref, segment_word=edit_source(words_module, EDITS).segment_word)
