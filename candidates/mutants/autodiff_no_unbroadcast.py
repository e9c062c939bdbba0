"""autodiff: reverse mode does not sum gradients over broadcast dimensions (a gradient gets the output's shape)."""

import types

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.autodiff import primitives, reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_broadcast_gradient_has_input_shape", "test_tensor_gradient_matches_autograd",
             "test_vjp_matches_autograd"]


def _with(fn, **names):
    return types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__, fn.__defaults__, fn.__closure__)


_keep = {p: primitives.Primitive(p.name, p.fn, _with(p.vjp, unbroadcast=lambda g, shape: g), p.jvp)
         for p in (primitives.ADD, primitives.SUB, primitives.MUL, primitives.DIV)}


class Var(reverse.Var):
    @classmethod
    def record(cls, prim, args, values, z, params):
        return super().record.__func__(cls, _keep.get(prim, prim), args, values, z, params)


_trace = _with(reverse.trace, Var=Var)
autodiff = patch(ref, grad=_with(reverse.grad, trace=_trace), vjp=_with(reverse.vjp, trace=_trace))
