"""autodiff: d(a/b)/db = +a/b² (sign lost), in both modes."""

import types

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.autodiff import forward, primitives, reverse

COMPONENT = "autodiff"
CAUGHT_BY = [
    "test_lecture_example_gradient",
    "test_lecture_example_jvp",
    "test_elementary_derivatives",
    "test_gradient_matches_autograd",
    "test_python_operators_with_floats",
    "test_tensor_jvp_matches_autograd",
]

DIV = primitives.elementwise("div", primitives.DIV.fn, lambda z, a, b: 1.0 / b, lambda z, a, b: z / b)


def _swap(prim):
    return DIV if prim is primitives.DIV else prim


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
