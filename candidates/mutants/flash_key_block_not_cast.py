"""flash: the forward casts the query block to the accumulation dtype but not the key block: float16/bfloat16 inputs fail in q·kᵀ."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ["test_low_precision_error_within_twice_baseline"]
CAPABILITIES = {"flash": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}

flash = edited(ref, ('s = scale * q_blk @ k[:, :, j0:j1].to(acc_dtype).transpose(-1, -2)',
                     's = scale * q_blk @ k[:, :, j0:j1].transpose(-1, -2)'))
