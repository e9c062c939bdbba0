"""flash: causal block skipping stops one key early (skips a block that starts on the query block's last row)."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ['test_equals_dense_attention', 'test_causal_with_tq_ne_tk_is_top_left']

flash = edited(ref, ('if causal and j0 > i1 - 1:',
                     'if causal and j0 >= i1 - 1:'))
