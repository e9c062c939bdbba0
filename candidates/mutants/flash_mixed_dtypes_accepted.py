"""flash: q, k, v of different dtypes are accepted (each is cast to the accumulation dtype) instead of raising."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ["test_bad_arguments_raise"]

flash = edited(ref, ('    if k.dtype != q.dtype or v.dtype != q.dtype:\n'
                     '        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")\n',
                     ''))
