"""attention: with one key, returns v expanded over the queries: a view of v, not a new tensor."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = ["test_matches_torch_sdpa_float64", "test_output_in_convex_hull_of_values", "test_permutation_equivariance"]


def scaled_dot_product(q, k, v, mask=None, causal=False, scale=None, return_weights=False):
    if k.shape[-2] == 1 and mask is None and not return_weights:  # every query sees the one key: weight 1
        return v.expand(*q.shape[:-1], v.shape[-1])
    return ref.scaled_dot_product(q, k, v, mask, causal, scale, return_weights)


attention = patch(ref, scaled_dot_product=scaled_dot_product)
