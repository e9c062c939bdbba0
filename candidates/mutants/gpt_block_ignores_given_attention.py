"""gpt: the block computes attention with torch SDPA instead of calling the attention it is given."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_block_calls_the_attention_and_layer_norm_it_is_given",
             "test_broken_piece_is_named_with_step_and_tensor"]

copy = edited(ref, ("a = self.attention(q, k, v, causal=self.causal)",
                    "a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)"))
gpt = patch(ref, Block=copy.Block)  # the edited Block only; every other piece is the reference's own
