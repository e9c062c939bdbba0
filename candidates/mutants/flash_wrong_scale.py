"""flash: the default scale is 1/D instead of 1/sqrt(D)."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = [
    "test_equals_dense_attention",
    "test_causal_with_tq_ne_tk_is_top_left",
    "test_non_contiguous_inputs_work",
]

flash = edited(ref, ('return 1.0 / math.sqrt(q.shape[-1])',
                     'return 1.0 / q.shape[-1]'))
