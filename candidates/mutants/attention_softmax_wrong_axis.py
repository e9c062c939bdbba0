"""attention: softmax over the queries (dim=-2) instead of over the keys (dim=-1)."""

import types

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import dense


def _masked_softmax(scores, allowed):
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    top = scores.amax(dim=-2, keepdim=True).detach()
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(scores - top)
    total = e.sum(dim=-2, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


COMPONENT = "attention"
CAUGHT_BY = [
    "test_matches_torch_sdpa_float64",
    "test_rows_sum_to_one",
    "test_constant_added_to_row_of_scores_changes_nothing",
    "test_output_in_convex_hull_of_values",
    "test_permutation_equivariance",
]

scaled_dot_product = types.FunctionType(dense.scaled_dot_product.__code__, {**dense.scaled_dot_product.__globals__,
                                        "masked_softmax": _masked_softmax}, "scaled_dot_product",
                                        dense.scaled_dot_product.__defaults__)
attention = patch(ref, scaled_dot_product=scaled_dot_product)
