"""collectives: all_reduce gathers every tensor on rank 0 and sends the result back: right values, but rank 0 sends (N-1)·S."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import patch

COMPONENT = "collectives"
CAUGHT_BY = ["test_all_reduce_bandwidth", "test_ring_worked_example"]

collectives = patch(ref, all_reduce=ref.naive_all_reduce)
