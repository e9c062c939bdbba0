"""bpe: the pre-token cache is a class attribute, shared by every Tokenizer whatever its merges."""

import reference.bpe as ref
import reference.bpe.tokenizer as tok_module
from candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = [
    "test_decode_inverts_encode",
    "test_decode_inverts_encode_examples",
    "test_each_merge_lowers_token_count_by_its_occurrences",
    "test_encode_applies_merges_by_rank",
    "test_encode_iterable_any_chunking",
    "test_encode_matches_hf_on_gpt2_vocab",
    "test_encode_matches_hf_on_gpt2_vocab_any_text",
    "test_encode_matches_hf_tokenizers",
    "test_from_files_reads_gpt2",
    "test_save_then_load_round_trip",
    "test_special_tokens_are_single_ids",
]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("    def __init__(self, vocab", "    _cache: dict[bytes, list[int]] = {}\n\n    def __init__(self, vocab"),
    ("        self._cache: dict[bytes, list[int]] = {}\n", ""),
]

bpe = patch(ref, Tokenizer=edit_source(tok_module, EDITS).Tokenizer)
