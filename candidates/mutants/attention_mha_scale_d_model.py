"""attention: multi-head attention scales by 1/sqrt(d_model) instead of 1/sqrt(d_model / n_heads)."""

import types

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import dense

COMPONENT = "attention"
CAUGHT_BY = ["test_multi_head_equals_per_head_attention"]


def _sdp_d_model(q, k, v, causal=False):  # called per head from multi_head; d_model = H * Dh
    return ref.scaled_dot_product(q, k, v, causal=causal, scale=(q.shape[1] * q.shape[-1]) ** -0.5)


multi_head = types.FunctionType(dense.multi_head.__code__, {**dense.multi_head.__globals__,
                                "scaled_dot_product": _sdp_d_model}, "multi_head", dense.multi_head.__defaults__)
attention = patch(ref, multi_head=multi_head)
