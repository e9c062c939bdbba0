"""bpe: encode_iterable never encodes the text it holds back when the input ends (the last pre-tokens are lost)."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_encode_iterable_any_chunking", "test_encode_iterable_reads_a_file"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("        if buffer:\n            yield from self.encode(buffer)\n", ""),
]

bpe = patch(ref, Tokenizer=edit_source(tok_module, EDITS).Tokenizer)
