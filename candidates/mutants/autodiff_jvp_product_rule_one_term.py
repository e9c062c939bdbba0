"""autodiff: forward mode of a product keeps one term of the product rule: d(ab) = da·b (a·db dropped)."""

import types

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.autodiff import forward, primitives

COMPONENT = "autodiff"
CAUGHT_BY = [
    "test_lecture_example_jvp",
    "test_jvp_matches_autograd",
    "test_jvp_along_basis_equals_gradient",
    "test_elementary_derivatives",
    "test_tensor_jvp_matches_autograd",
]


def _mul_jvp(tangents, z, a, b):
    ta, tb = tangents
    return (ta * b).expand(z.shape) if ta is not None else (0.0 * tb * a).expand(z.shape)


MUL = primitives.Primitive("mul", primitives.MUL.fn, primitives.MUL.vjp, _mul_jvp)


class Dual(forward.Dual):
    @classmethod
    def record(cls, prim, args, values, z, params):
        return super().record.__func__(cls, MUL if prim is primitives.MUL else prim, args, values, z, params)


def _with(fn, **names):
    return types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__, fn.__defaults__, fn.__closure__)


autodiff = patch(ref, jvp=_with(forward.jvp, Dual=Dual))
