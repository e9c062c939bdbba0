"""layers: cross-entropy backward for the summed loss (softmax - onehot), not divided by the number of rows."""

import torch

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch

COMPONENT = "layers"
CAUGHT_BY = [
    "test_cross_entropy_backward_worked_example",
    "test_cross_entropy_backward_matches_autograd",
    "test_cross_entropy_backward_rows_sum_to_zero",
    "test_bad_arguments_raise",
]


def cross_entropy_backward(logits, targets):
    p = torch.softmax(logits, dim=-1)
    return p - torch.nn.functional.one_hot(targets.long(), logits.shape[-1]).to(p.dtype)


layers = patch(ref, cross_entropy_backward=cross_entropy_backward)
