"""autodiff: matmul's reverse rule uses dA = G B instead of G Bᵀ."""

import types

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.autodiff import primitives, reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_matmul_gradient_is_transposed_product", "test_tensor_gradient_matches_autograd",
             "test_vjp_matches_autograd", "test_jvp_vjp_adjoint"]


def _matmul_vjp(g, z, a, b):
    a2, b2 = primitives._as_matrices(a, b)
    g2 = g.reshape(a2.shape[0], b2.shape[1])
    return (g2 @ b2).reshape(a.shape), (a2.T @ g2).reshape(b.shape)


MATMUL = primitives.Primitive("matmul", primitives.MATMUL.fn, _matmul_vjp, primitives.MATMUL.jvp)


class Var(reverse.Var):
    @classmethod
    def record(cls, prim, args, values, z, params):
        return super().record.__func__(cls, MATMUL if prim is primitives.MATMUL else prim, args, values, z, params)


def _with(fn, **names):
    return types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__, fn.__defaults__, fn.__closure__)


_trace = _with(reverse.trace, Var=Var)
autodiff = patch(ref, grad=_with(reverse.grad, trace=_trace), vjp=_with(reverse.vjp, trace=_trace))
