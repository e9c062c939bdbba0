"""autodiff: sigmoid'(x) written as x(1 - x), the input where the output s = sigmoid(x) belongs."""

import torch

from fmspec.candidates.mutants._autodiff import with_primitives
from fmspec.reference.autodiff import primitives

COMPONENT = "autodiff"
CAUGHT_BY = [
    "test_elementary_derivatives_gradient",
    "test_elementary_derivatives_jvp",
    "test_gradient_matches_autograd",
    "test_tensor_gradient_matches_autograd",
    "test_tensor_jvp_matches_autograd",
]

SIGMOID = primitives.elementwise("sigmoid", torch.sigmoid, lambda z, a: a * (1.0 - a))  # z (1 - z)

autodiff = with_primitives(SIGMOID)
