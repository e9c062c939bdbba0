"""flash: float16/bfloat16 inputs are accumulated in their own dtype (scores, running sums and output), not in float32."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ["test_low_precision_error_within_twice_baseline"]
CAPABILITIES = {"flash": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}

flash = edited(ref, ('acc_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32',
                     'acc_dtype = q.dtype'))
