"""attention: default scale 1/D instead of 1/sqrt(D) in scaled_dot_product."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = [
    "test_worked_example_two_tokens",
    "test_matches_torch_sdpa_float64",
    "test_bad_arguments_raise_value_error",
    "test_permutation_equivariance",
]


def scaled_dot_product(q, k, v, mask=None, causal=False, scale=None, return_weights=False):
    if scale is None:
        scale = 1.0 / q.shape[-1]
    return ref.scaled_dot_product(q, k, v, mask=mask, causal=causal, scale=scale, return_weights=return_weights)


attention = patch(ref, scaled_dot_product=scaled_dot_product)
