"""bpe: decode decodes each token's bytes on its own, so a character split across tokens becomes U+FFFD."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = [
    "test_decode_inverts_encode",
    "test_decode_inverts_encode_examples",
    "test_decode_replaces_invalid_utf8",
    "test_encode_matches_hf_on_gpt2_vocab",
]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('return b"".join(out).decode("utf-8", errors="replace")',
     'return "".join(tok.decode("utf-8", errors="replace") for tok in out)'),
]

bpe = patch(ref, Tokenizer=edit_source(tok_module, EDITS).Tokenizer)
