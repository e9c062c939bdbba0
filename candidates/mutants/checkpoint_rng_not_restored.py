"""checkpoint: the recomputation draws fresh dropout masks (random state not restored)."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edited

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_gradients_match_no_checkpointing", "test_parameter_gradients_without_input_grad"]
CAUGHT_BY_GPU = ["test_cuda_dropout_masks_replayed"]

checkpoint = edited(ref, ("with _replay(ctx.rng, x), torch.enable_grad():",
                          "with torch.enable_grad():  # whatever random state the backward pass finds"))
