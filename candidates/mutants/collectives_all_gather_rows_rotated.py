"""collectives: all_gather returns the rows in ring order from the caller's own (row i holds rank r + i): right on rank 0 only."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_all_gather_matches_oracle"]

collectives = edited(ref, ("    _ring_all_gather(comm, rows)\n    return out\n",
                           "    _ring_all_gather(comm, rows)\n    return out.roll(-r, 0)\n"))
