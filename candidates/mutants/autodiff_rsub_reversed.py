"""autodiff: the reflected subtraction c - x computes x - c (__rsub__ with its operands swapped)."""

import types

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.autodiff import forward, ops, reverse

COMPONENT = "autodiff"
CAUGHT_BY = [
    "test_python_operators_with_floats",
    "test_gradient_matches_autograd",
    "test_jvp_matches_autograd",
    "test_tensor_jvp_matches_autograd",
]


class Var(reverse.Var):
    def __rsub__(self, other):
        return ops.sub(self, other)


class Dual(forward.Dual):
    def __rsub__(self, other):
        return ops.sub(self, other)


def _with(fn, **names):
    return types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__, fn.__defaults__, fn.__closure__)


_trace = _with(reverse.trace, Var=Var)
autodiff = patch(ref, grad=_with(reverse.grad, trace=_trace), vjp=_with(reverse.vjp, trace=_trace),
                 jvp=_with(forward.jvp, Dual=Dual))
