"""layers: softmax backward returns y ⊙ g, missing the subtraction of ⟨g, y⟩."""

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch

COMPONENT = "layers"
CAUGHT_BY = [
    "test_softmax_backward_matches_autograd",
    "test_softmax_backward_worked_example",
    "test_softmax_backward_sums_to_zero",
    "test_bad_arguments_raise",
]


def softmax_backward(y, grad_y, dim=-1):
    return y * grad_y


layers = patch(ref, softmax_backward=softmax_backward)
