"""collectives: all_reduce with op="mean" returns the sum (the division by N forgotten), so DDP sums gradients."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_all_reduce_matches_oracle", "test_ddp_matches_single_process"]

collectives = edited(ref, ("        flat[a:b] /= n  #", "        flat[a:b] /= 1  #"))
