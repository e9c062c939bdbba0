"""bpe: encode merges the leftmost pair that has a merge instead of the lowest-ranked one."""

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.bpe.tokenizer import merge_pair

COMPONENT = "bpe"
CAUGHT_BY = [
    "test_encode_rank_order_example",
    "test_encode_matches_hf_on_gpt2_vocab",
    "test_from_files_reads_gpt2",
    "test_encode_matches_hf_on_gpt2_vocab_any_text",
]


class Tokenizer(ref.Tokenizer):
    def _encode_pretoken(self, pretoken):
        raw = pretoken.encode("utf-8")
        parts = [raw[i:i + 1] for i in range(len(raw))]
        while True:
            pair = next((p for p in zip(parts, parts[1:]) if p in self.ranks), None)
            if pair is None:
                return [self.ids[t] for t in parts]
            parts = merge_pair(parts, pair)


bpe = patch(ref, Tokenizer=Tokenizer)
