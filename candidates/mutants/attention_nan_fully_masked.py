"""attention: plain softmax after filling masked scores with -inf: a fully masked row becomes NaN (0/0)."""

import types

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import dense


def _masked_softmax(scores, allowed):
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1)


COMPONENT = "attention"
CAUGHT_BY = ["test_fully_masked_row_gives_zeros_and_finite_gradients"]

scaled_dot_product = types.FunctionType(dense.scaled_dot_product.__code__, {**dense.scaled_dot_product.__globals__,
                                        "masked_softmax": _masked_softmax}, "scaled_dot_product",
                                        dense.scaled_dot_product.__defaults__)
attention = patch(ref, scaled_dot_product=scaled_dot_product)
