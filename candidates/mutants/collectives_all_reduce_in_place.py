"""collectives: all_reduce works in the caller's tensor (a view, not a copy): the input is overwritten with the result."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_all_reduce_matches_oracle"]

collectives = edited(ref, ("    flat = tensor.detach().reshape(-1).clone()  # (S,): our working copy; the input stays as it was",
                           "    flat = tensor.detach().reshape(-1)  # (S,)"))
