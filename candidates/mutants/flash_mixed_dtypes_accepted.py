"""flash: q, k, v of different dtypes are accepted (each is cast to the accumulation dtype) instead of raising."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "flash"
CAUGHT_BY = ["test_bad_arguments_raise"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('    if k.dtype != q.dtype or v.dtype != q.dtype:\n'
     '        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")\n',
     ''),
]


flash = patch(edit_source(ref, EDITS))
