"""bpe: encode applies BPE-dropout (p = 0.1, from a training config): each merge is skipped at random."""

import random

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.bpe.pairs import merge

COMPONENT = "bpe"
CAUGHT_BY = [
    "test_encode_applies_merges_by_rank",
    "test_encode_iterable_any_chunking",
    "test_encode_iterable_reads_a_file",
    "test_encode_matches_hf_on_gpt2_vocab",
    "test_encode_matches_hf_tokenizers",
    "test_from_files_reads_gpt2",
    "test_same_ids_when_called_twice",
    "test_save_then_load_round_trip",
]
# test_encode_rank_order_example and test_special_tokens_are_single_ids encode a word or two of three bytes: they
# fail only in the runs where a merge there is skipped, so they are not listed
DROPOUT = 0.1


class Tokenizer(ref.Tokenizer):
    def _encode_pretoken(self, pretoken):  # no cache: with dropout a pre-token has no fixed encoding
        raw = pretoken.encode("utf-8")
        parts = [raw[i:i + 1] for i in range(len(raw))]
        while len(parts) > 1:
            kept = [p for p in set(zip(parts, parts[1:])) if p in self.ranks and random.random() >= DROPOUT]
            if not kept:
                break
            pair = min(kept, key=self.ranks.__getitem__)
            parts = merge(parts, pair, pair[0] + pair[1])
        return [self.ids[t] for t in parts]


bpe = patch(ref, Tokenizer=Tokenizer)
