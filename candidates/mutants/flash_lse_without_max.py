"""flash: the log-sum-exp is log(l), without adding back the running max."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "flash"
CAUGHT_BY = ['test_lse_is_log_sum_exp', 'test_gradients_match_dense_autograd', 'test_large_logits_do_not_overflow']
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('lse[:, :, i0:i1] = m + torch.log(l)',
     'lse[:, :, i0:i1] = torch.log(l)'),
]


flash = patch(edit_source(ref, EDITS))
