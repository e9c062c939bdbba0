"""quant: int8_matmul's shape mismatch raises ValueError("shapes do not match") without naming w."""

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import edited

COMPONENT = "quant"
CAUGHT_BY = ["test_int8_matmul_bad_arguments_raise"]

quant = edited(ref, ('raise ValueError(f"w must have shape (out, {x.shape[-1]}), got {tuple(w.shape)}")',
                     'raise ValueError(f"shapes do not match: {tuple(x.shape)}, {tuple(w.shape)}")'))
