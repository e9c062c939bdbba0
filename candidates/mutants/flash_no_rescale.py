"""flash: the online softmax forgets to rescale the running sum when the running max grows."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "flash"
CAUGHT_BY = ['test_equals_dense_attention', 'test_block_size_invariance', 'test_large_logits_do_not_overflow']
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('l = alpha * l + p.sum(-1)',
     'l = l + p.sum(-1)'),
]


flash = patch(edit_source(ref, EDITS))
