"""collectives: in the reduce tree a rank forwards its own tensor instead of its partial sum: the subtrees below it are lost (N >= 3)."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_reduce_matches_oracle"]

collectives = edited(ref, ("            comm.send(acc, (v - mask + root) % n)\n            return None",
                           "            comm.send(tensor.detach(), (v - mask + root) % n)\n            return None"))
