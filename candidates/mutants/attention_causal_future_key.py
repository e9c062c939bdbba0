"""attention: causal mask built with tril(1): query i also sees key i + 1, one step into the future."""

import types

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import dense


def _allowed_keys(mask, causal, lead, tq, tk, device):
    base = dense.allowed_keys(mask, False, lead, tq, tk, device)
    if not causal:
        return base
    lower = torch.ones(tq, tk, dtype=torch.bool, device=device).tril(1)
    return lower if base is None else base & lower


COMPONENT = "attention"
CAUGHT_BY = [
    "test_matches_torch_sdpa_float64",
    "test_causal_is_top_left_aligned",
    "test_causal_outputs_ignore_future_keys",
    "test_output_in_convex_hull_of_values",
]

scaled_dot_product = types.FunctionType(dense.scaled_dot_product.__code__, {**dense.scaled_dot_product.__globals__,
                                        "allowed_keys": _allowed_keys}, "scaled_dot_product",
                                        dense.scaled_dot_product.__defaults__)
attention = patch(ref, scaled_dot_product=scaled_dot_product)
