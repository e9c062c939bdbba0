"""flash: the log-sum-exp is stored in the input dtype (float16/bfloat16), and the backward recomputes P from it."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ["test_low_precision_error_within_twice_baseline"]
CAPABILITIES = {"flash": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}

flash = edited(ref, ('lse = torch.empty(B, H, Tq, dtype=acc_dtype, device=q.device)',
                     'lse = torch.empty(B, H, Tq, dtype=q.dtype, device=q.device)'))
