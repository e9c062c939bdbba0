"""collectives: DistributedDataParallel does not broadcast rank 0's parameters and buffers at construction: every replica starts from its own weights."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_ddp_broadcasts_at_construction", "test_ddp_matches_single_process"]

collectives = edited(ref, ("states = [*module.parameters(), *module.buffers()]", "states = []"))
