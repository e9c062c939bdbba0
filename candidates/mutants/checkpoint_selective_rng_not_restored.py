"""checkpoint: checkpoint_selective recomputes dropped tensors under a fresh random state (other dropout masks)."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edited

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_selective_matches_no_checkpointing"]

checkpoint = edited(ref, ("with _replay(rng, x), torch.enable_grad(),", "with torch.enable_grad(),"))
