"""gpt: the block is causal whatever it is asked (the encoder sees only the left context)."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_block_matches_formula", "test_block_calls_the_attention_and_layer_norm_it_is_given",
             "test_information_flows_only_where_allowed"]

copy = edited(ref, ("self.n_heads, self.causal = n_heads, causal", "self.n_heads, self.causal = n_heads, True"))
gpt = patch(ref, Block=copy.Block)  # the edited Block only; every other piece is the reference's own
