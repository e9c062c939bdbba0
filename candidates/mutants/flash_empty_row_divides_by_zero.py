"""flash: a row with no visible key divides 0 by l = 0: NaN output instead of zeros."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ["test_rows_without_keys_give_zero_and_minus_inf_lse"]

flash = edited(ref, ('o[:, :, i0:i1] = (acc / l.masked_fill(empty, 1.0)[..., None]).to(q.dtype)',
                     'o[:, :, i0:i1] = (acc / l[..., None]).to(q.dtype)'))
