"""flash: the online softmax forgets to rescale the running sum when the running max grows."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ['test_equals_dense_attention', 'test_block_size_invariance', 'test_large_logits_do_not_overflow']

flash = edited(ref, ('l = alpha * l + p.sum(-1)',
                     'l = l + p.sum(-1)'))
