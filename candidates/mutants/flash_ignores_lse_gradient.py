"""flash: the backward drops the gradient that flows into the returned log-sum-exp."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ['test_gradients_match_dense_autograd']

flash = edited(ref, ('delta = delta - dlse.to(acc_dtype)',
                     'delta = delta'))
