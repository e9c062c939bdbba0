"""autodiff: grad assumes f returns a traced variable; a constant f (or one not using its inputs) crashes."""

import torch

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.autodiff import reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_unused_input_gets_zero_gradient"]


def grad(f, *xs):
    values, scalar = reverse.as_tensors(xs, "xs")
    inputs, out = reverse.trace(f, values)
    if out.value.numel() != 1:
        raise ValueError("grad: f must return a scalar")
    adjoint = reverse.backward(out, torch.ones_like(out.value))
    grads = [adjoint[x.index] if adjoint[x.index] is not None else torch.zeros_like(x.value) for x in inputs]
    if scalar:
        return out.value.item(), tuple(g.item() for g in grads)
    return out.value.reshape(()), tuple(grads)


autodiff = patch(ref, grad=grad)
