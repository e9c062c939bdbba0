"""flash: the output buffer is allocated without dtype=, so the output is float32 whatever the input dtype."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = [
    "test_causal_with_tq_ne_tk_is_top_left",
    "test_empty_query_gives_empty_output",
    "test_equals_dense_attention",
    "test_gradients_match_dense_autograd",
]

flash = edited(ref, ('o = torch.empty(B, H, Tq, v.shape[-1], dtype=q.dtype, device=q.device)',
                     'o = torch.empty(B, H, Tq, v.shape[-1], device=q.device)'))
