"""collectives: DistributedDataParallel broadcasts the parameters but not the buffers: each rank's forward uses its own buffer."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_ddp_broadcasts_at_construction", "test_ddp_matches_single_process"]

collectives = edited(ref, ("states = [*module.parameters(), *module.buffers()]", "states = [*module.parameters()]"))
