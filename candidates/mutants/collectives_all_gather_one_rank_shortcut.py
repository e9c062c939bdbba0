"""collectives: all_gather on one rank returns a copy of the tensor, not a stack of one row."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_world_size_one_is_identity"]

collectives = edited(ref, ('    _check(comm, "all_gather", tensor)\n',
                           '    _check(comm, "all_gather", tensor)\n    if comm.world_size == 1:\n        return tensor.detach().clone()\n'))
