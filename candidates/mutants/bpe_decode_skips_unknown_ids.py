"""bpe: decode reads an id missing from the vocabulary (999999, -1) as no bytes instead of raising ValueError."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_tokenizer_bad_arguments_raise"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("tok = self.vocab.get(i)", 'tok = self.vocab.get(i, b"")'),
]

bpe = patch(ref, Tokenizer=edit_source(tok_module, EDITS).Tokenizer)
