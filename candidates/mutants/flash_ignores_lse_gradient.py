"""flash: the backward drops the gradient that flows into the returned log-sum-exp."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "flash"
CAUGHT_BY = ['test_gradients_match_dense_autograd']
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('delta = delta - dlse.to(acc_dtype)',
     'delta = delta'),
]


flash = patch(edit_source(ref, EDITS))
