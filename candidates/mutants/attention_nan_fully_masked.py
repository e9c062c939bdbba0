"""attention: plain softmax after filling masked scores with -inf: a fully masked row becomes NaN (0/0)."""

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch, rebind
from fmspec.reference.attention import dense

COMPONENT = "attention"
CAUGHT_BY = ["test_fully_masked_row_gives_zeros_and_finite_gradients"]


def _masked_softmax(scores, allowed):
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1)


attention = patch(ref, scaled_dot_product=rebind(dense.scaled_dot_product, masked_softmax=_masked_softmax))
