"""quant: codes rounded half away from zero (C's round) instead of half to even: exact ties 0.5, 2.5 go up."""

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import edited

COMPONENT = "quant"
CAUGHT_BY = ["test_exact_ties_round_half_to_even"]

quant = edited(ref, ("return torch.round(c * x.to(work)).to(torch.int8)",
                     "v = c * x.to(work)\n    return (torch.sign(v) * torch.floor(v.abs() + 0.5)).to(torch.int8)"))
