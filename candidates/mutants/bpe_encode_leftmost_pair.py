"""bpe: encode merges the leftmost pair that has a merge instead of the lowest-ranked one."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = [
    "test_encode_rank_order_example",
    "test_encode_matches_hf_on_gpt2_vocab",
    "test_from_files_reads_gpt2",
    "test_encode_matches_hf_on_gpt2_vocab_any_text",
]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("pair = min(known, key=ranks.__getitem__)  # the lowest rank first",
     "pair = next(p for p in zip(parts, parts[1:]) if p in ranks)  # the leftmost"),
]

bpe = patch(ref, Tokenizer=edit_source(tok_module, EDITS).Tokenizer)
