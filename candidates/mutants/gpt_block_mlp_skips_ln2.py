"""gpt: the block's MLP reads the residual stream without its layer norm (ln2 unused)."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_block_matches_formula", "test_block_calls_the_attention_and_layer_norm_it_is_given",
             "test_every_parameter_gets_a_gradient", "test_debug_run_trains_like_the_reference"]

copy = edited(ref, ("h = self.layer_norm(x, self.ln2.weight, self.ln2.bias)", "h = x  # ln2 forgotten"))
gpt = patch(ref, Block=copy.Block)  # the edited Block only; every other piece is the reference's own
