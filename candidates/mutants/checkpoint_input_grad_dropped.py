"""checkpoint: the recomputation starts from a detached input, so no gradient flows back to x."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edited

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_gradients_match_no_checkpointing"]
CAUGHT_BY_GPU = ["test_cuda_dropout_masks_replayed"]

checkpoint = edited(ref, ("need_x, need_params = ctx.needs_input_grad[1], ctx.needs_input_grad[2:]",
                          "need_x, need_params = False, ctx.needs_input_grad[2:]  # the input's gradient never asked for"))
