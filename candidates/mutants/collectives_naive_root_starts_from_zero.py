"""collectives: naive_all_reduce's rank 0 starts from zeros and combines only what it receives: its own tensor is left out."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_naive_all_reduce_matches_oracle"]

collectives = edited(ref, ("    if r == 0:\n        incoming = torch.empty_like(acc)\n",
                           "    if r == 0:\n        acc = torch.zeros_like(acc)\n        incoming = torch.empty_like(acc)\n"))
