"""collectives: broadcast ignores root and sends rank 0's tensor."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_broadcast_matches_oracle"]

collectives = edited(ref, ("    _check(comm, \"broadcast\", tensor, root=root)\n",
                           "    _check(comm, \"broadcast\", tensor, root=root)\n    root = 0\n"))
