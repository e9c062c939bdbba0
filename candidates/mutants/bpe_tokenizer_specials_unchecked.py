"""bpe: Tokenizer takes its special tokens as given: an empty or a repeated one is accepted without an error."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_tokenizer_bad_special_tokens_raise"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("self.special_tokens = check_special_tokens(special_tokens or ())",
     "self.special_tokens = tuple(special_tokens or ())"),
]

bpe = patch(ref, Tokenizer=edit_source(tok_module, EDITS).Tokenizer)
