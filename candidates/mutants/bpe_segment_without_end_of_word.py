"""bpe: segment_word forgets the end-of-word symbol: "low" is segmented as l o w, never reaching low</w>."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.words as words_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_lecture_walkthrough", "test_lecture_example_vocabulary", "test_segment_word_applies_merges_by_rank"]
EDITS = [  # the reference with these lines changed (the first occurrence of each: in segment_word)
    ("    symbols = word_symbols(word)\n", "    symbols = list(word)\n"),
]

bpe = patch(ref, segment_word=edit_source(words_module, EDITS).segment_word)
