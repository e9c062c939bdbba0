"""bpe: encode writes a lone surrogate as "?" (errors="replace") instead of raising ValueError."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_lone_surrogate_raises_value_error"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('raw = pretoken.encode("utf-8")', 'raw = pretoken.encode("utf-8", errors="replace")'),
]

bpe = patch(ref, Tokenizer=edit_source(tok_module, EDITS).Tokenizer)
