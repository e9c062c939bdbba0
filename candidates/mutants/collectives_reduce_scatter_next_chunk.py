"""collectives: reduce_scatter hands back chunk r + 1 (where the textbook ring, without this ring's shift, leaves the sum): a partial sum of another rank's chunk."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_reduce_scatter_matches_oracle", "test_reduce_scatter_then_all_gather_equals_all_reduce"]

collectives = edited(ref, ("    _ring_reduce_scatter(comm, flat, op)\n    a, b = chunk_bounds(flat.numel(), n)[r]\n    mine",
                           "    _ring_reduce_scatter(comm, flat, op)\n    a, b = chunk_bounds(flat.numel(), n)[(r + 1) % n]\n    mine"))
