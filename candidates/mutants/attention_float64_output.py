"""attention: scaled_dot_product computes in float64 and returns float64 for float32 inputs (right values, wrong dtype)."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = ["test_matches_torch_sdpa_float64", "test_constant_added_to_row_of_scores_changes_nothing"]


def scaled_dot_product(q, k, v, mask=None, causal=False, scale=None, return_weights=False):
    return ref.scaled_dot_product(q.double(), k.double(), v.double(), mask, causal, scale, return_weights)


attention = patch(ref, scaled_dot_product=scaled_dot_product)
