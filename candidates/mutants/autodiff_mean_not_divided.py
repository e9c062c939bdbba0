"""autodiff: the reverse rule of mean copies the gradient back without dividing by the count."""

import types

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.autodiff import primitives, reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_tensor_gradient_matches_autograd", "test_vjp_matches_autograd", "test_jvp_vjp_adjoint"]

MEAN = primitives.Primitive(
    "mean", primitives.MEAN.fn,
    lambda g, z, x, dim=None, keepdim=False: (primitives._expand_back(g, x, dim, keepdim),),
    primitives.MEAN.jvp,
)


class Var(reverse.Var):
    @classmethod
    def record(cls, prim, args, values, z, params):
        return super().record.__func__(cls, MEAN if prim is primitives.MEAN else prim, args, values, z, params)


def _with(fn, **names):
    return types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__, fn.__defaults__, fn.__closure__)


_trace = _with(reverse.trace, Var=Var)
autodiff = patch(ref, grad=_with(reverse.grad, trace=_trace), vjp=_with(reverse.vjp, trace=_trace))
