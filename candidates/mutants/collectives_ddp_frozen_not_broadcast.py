"""collectives: DistributedDataParallel broadcasts only the trainable parameters: a frozen layer keeps each rank's own weights."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_ddp_broadcasts_at_construction", "test_ddp_frozen_parameters_never_change"]

collectives = edited(ref, ("states = [*module.parameters(), *module.buffers()]",
                           "states = [*(p for p in module.parameters() if p.requires_grad), *module.buffers()]"))
