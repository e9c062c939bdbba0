"""attention: scaled_dot_product scales q in place and copies the original back before returning."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import dense

COMPONENT = "attention"
CAUGHT_BY = ["test_rows_sum_to_one", "test_matches_torch_sdpa_float64"]


def scaled_dot_product(q, k, v, mask=None, causal=False, scale=None, return_weights=False):
    dense.check_qkv(q, k, v)
    saved = q.detach().clone()
    with __import__("torch").no_grad():
        q.mul_(dense.check_scale(scale, q.shape[-1]))  # bug: in place; the value is put back below
    out = ref.scaled_dot_product(q.detach().clone().requires_grad_(q.requires_grad), k, v, mask=mask, causal=causal,
                                 scale=1.0, return_weights=return_weights)
    with __import__("torch").no_grad():
        q.copy_(saved)
    return out


attention = patch(ref, scaled_dot_product=scaled_dot_product)
