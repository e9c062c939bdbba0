"""autodiff: grad of a non-scalar output seeds every element with 1 (an implicit sum) instead of raising."""

import torch

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch

COMPONENT = "autodiff"
CAUGHT_BY = ["test_non_scalar_output_raises"]


def grad(f, *xs):
    if all(isinstance(x, torch.Tensor) for x in xs):
        out = f(ref.ops, *xs)  # a plain evaluation, for the output's shape
        value, grads = ref.vjp(f, xs, torch.ones_like(torch.as_tensor(out)))
        return value.sum(), grads
    return ref.grad(f, *xs)


autodiff = patch(ref, grad=grad)
