"""autodiff: grad does not check its inputs: a string fails inside torch with a TypeError that does not name xs."""

import torch

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch, rebind
from fmspec.reference.autodiff import reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_bad_grad_arguments_raise"]


def as_tensors(xs, name):
    scalar = not any(isinstance(x, torch.Tensor) for x in xs)
    return [torch.as_tensor(x, dtype=torch.float64) for x in xs], scalar  # no check: torch's own TypeError


autodiff = patch(ref, grad=rebind(reverse.grad, as_tensors=as_tensors))
