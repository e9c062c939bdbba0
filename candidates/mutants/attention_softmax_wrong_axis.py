"""attention: softmax over the queries (dim=-2) instead of over the keys (dim=-1)."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.attention import dense

COMPONENT = "attention"
CAUGHT_BY = [
    "test_matches_torch_sdpa_float64",
    "test_rows_sum_to_one",
    "test_constant_added_to_row_of_scores_changes_nothing",
    "test_output_in_convex_hull_of_values",
    "test_permutation_equivariance",
]

_dense = edit_source(dense, [
    ("top = scores.amax(dim=-1, keepdim=True)", "top = scores.amax(dim=-2, keepdim=True)"),
    ("total = e.sum(dim=-1, keepdim=True)", "total = e.sum(dim=-2, keepdim=True)"),
])
attention = patch(ref, scaled_dot_product=_dense.scaled_dot_product)
