"""gpt: the block calls its attention without the causal mask (the decoder reads the tokens it predicts)."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_block_matches_formula", "test_block_calls_the_attention_and_layer_norm_it_is_given",
             "test_information_flows_only_where_allowed"]

copy = edited(ref, ("a = self.attention(q, k, v, causal=self.causal)", "a = self.attention(q, k, v, causal=False)"))
gpt = patch(ref, Block=copy.Block)  # the edited Block only; every other piece is the reference's own
