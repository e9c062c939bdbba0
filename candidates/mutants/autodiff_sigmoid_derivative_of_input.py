"""autodiff: sigmoid'(x) written as x(1 - x), the input where the output s = sigmoid(x) belongs."""

import types

import torch

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.autodiff import forward, primitives, reverse

COMPONENT = "autodiff"
CAUGHT_BY = [
    "test_elementary_derivatives",
    "test_gradient_matches_autograd",
    "test_tensor_gradient_matches_autograd",
    "test_tensor_jvp_matches_autograd",
]

SIGMOID = primitives.elementwise("sigmoid", torch.sigmoid, lambda z, a: a * (1.0 - a))


def _swap(prim):
    return SIGMOID if prim is primitives.SIGMOID else prim


class Var(reverse.Var):
    @classmethod
    def record(cls, prim, args, values, z, params):
        return super().record.__func__(cls, _swap(prim), args, values, z, params)


class Dual(forward.Dual):
    @classmethod
    def record(cls, prim, args, values, z, params):
        return super().record.__func__(cls, _swap(prim), args, values, z, params)


def _with(fn, **names):
    return types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__, fn.__defaults__, fn.__closure__)


_trace = _with(reverse.trace, Var=Var)
autodiff = patch(ref, grad=_with(reverse.grad, trace=_trace), vjp=_with(reverse.vjp, trace=_trace),
                 jvp=_with(forward.jvp, Dual=Dual))
