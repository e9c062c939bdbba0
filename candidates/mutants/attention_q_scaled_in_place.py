"""attention: scaled_dot_product scales q in place (q *= scale), changing the caller's tensor."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import dense

COMPONENT = "attention"
CAUGHT_BY = [
    "test_worked_example_two_tokens",
    "test_matches_torch_sdpa_float64",
    "test_rows_sum_to_one",
    "test_output_in_convex_hull_of_values",
    "test_permutation_equivariance",
    "test_constant_added_to_row_of_scores_changes_nothing",
    "test_masked_keys_and_values_change_nothing",
    "test_fully_masked_row_gives_zeros_and_finite_gradients",
    "test_causal_is_top_left_aligned",
    "test_gradients_match_torch_sdpa_float64",
    "test_same_answer_when_called_twice",
    "test_causal_outputs_ignore_future_keys",
]


def scaled_dot_product(q, k, v, mask=None, causal=False, scale=None, return_weights=False):
    dense.check_qkv(q, k, v)
    q *= dense.check_scale(scale, q.shape[-1])  # bug: in place, so a second call sees q already scaled
    return ref.scaled_dot_product(q, k, v, mask=mask, causal=causal, scale=1.0, return_weights=return_weights)


attention = patch(ref, scaled_dot_product=scaled_dot_product)
