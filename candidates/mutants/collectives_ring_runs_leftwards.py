"""collectives: the ring runs leftwards (to rank r - 1): right values and bytes, but not the lecture's ring: its partial sums sit on other ranks."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_ring_worked_example"]

_LEFT = ("right, left = (r + 1) % n, (r - 1) % n", "right, left = (r - 1) % n, (r + 1) % n")
collectives = edited(ref, _LEFT, _LEFT,  # ReduceScatter's, then AllGather's
                     ("a, b = bounds[(r - 1 - s) % n]", "a, b = bounds[(r + 1 + s) % n]"),
                     ("c, d = bounds[(r - 2 - s) % n]", "c, d = bounds[(r + 2 + s) % n]"),
                     ("a, b = bounds[(r - s) % n]", "a, b = bounds[(r + s) % n]"),
                     ("c, d = bounds[(r - 1 - s) % n]", "c, d = bounds[(r + 1 + s) % n]"))
