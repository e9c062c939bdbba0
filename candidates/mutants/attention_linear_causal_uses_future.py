"""attention: causal linear attention sums phi(k_j) v_j over all j (no prefix sums): it sees the future."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = [
    "test_linear_equals_quadratic_form",
    "test_causal_outputs_ignore_future_keys",
    "test_linear_with_callable_feature_map",
]


def linear(q, k, v, feature_map="elu1", causal=False):
    return ref.linear(q, k, v, feature_map=feature_map, causal=False)


attention = patch(ref, linear=linear)
