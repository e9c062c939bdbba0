"""attention: multi-head attention scales by 1/sqrt(d_model) instead of 1/sqrt(d_model / n_heads)."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.attention import dense

COMPONENT = "attention"
CAUGHT_BY = ["test_multi_head_equals_per_head_attention"]

_dense = edit_source(dense, [("heads = scaled_dot_product(q, k, v, causal=causal)",
                              "heads = scaled_dot_product(q, k, v, causal=causal, scale=d ** -0.5)")])
attention = patch(ref, multi_head=_dense.multi_head)
