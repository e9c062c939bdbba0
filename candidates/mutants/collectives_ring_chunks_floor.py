"""collectives: ring chunks of S // N elements each: for S not divisible by N the last S mod N elements are never reduced."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_all_reduce_matches_oracle", "test_reduce_scatter_matches_oracle"]

collectives = edited(ref, ("stop = start + base + (1 if c < extra else 0)", "stop = start + base"))
