"""bpe: the pre-token cache is a class attribute, shared by every Tokenizer whatever its merges."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = [  # the tests that fail even alone: the others fail or pass by what earlier tests left in the cache
    "test_decode_inverts_encode",
    "test_each_merge_lowers_token_count_by_its_occurrences",
    "test_encode_applies_merges_by_rank",
    "test_encode_matches_hf_tokenizers",
    "test_save_then_load_round_trip",
]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("    def __init__(self, vocab", "    _cache: dict[bytes, list[int]] = {}\n\n    def __init__(self, vocab"),
    ("        self._cache: dict[bytes, list[int]] = {}\n", ""),
]

bpe = patch(ref, Tokenizer=edit_source(tok_module, EDITS).Tokenizer)
