"""The operations a program ``f(ops, *vars)`` is written with, and the Python operators of its variables.

Every operation goes through :func:`apply`, which computes z = h(args) and hands it to the mode that is
running: reverse mode records a node on the tape (:class:`reference.autodiff.reverse.Var`), forward mode
carries the tangent along (:class:`reference.autodiff.forward.Dual`). With no traced argument the
operation is a plain evaluation (Python numbers in, a Python float out), so one ``f`` serves for the
value, the gradient and the jvp alike::

    f = lambda ops, x, y: ops.sin(x) * y + 2 * x
    f(ops, 1.0, 2.0)   # 3.68294... (plain floats)

Scalars: add sub mul div neg pow sin cos exp log tanh sigmoid relu and ``+ - * / ** -x`` with floats on
either side. Tensors (a second tier): the same, broadcasting as torch, plus matmul (``@``), sum, mean,
reshape and transpose.
"""

from __future__ import annotations

import numbers

import torch
from torch import Tensor

from fmspec.reference.autodiff import primitives as P


class Traced:
    """A variable z_t of a program being differentiated; ``value`` is z_t itself (a float64 tensor)."""

    value: Tensor

    @classmethod
    def record(cls, prim: P.Primitive, args: tuple, values: tuple, z: Tensor, params: dict) -> "Traced":
        raise NotImplementedError

    @property
    def shape(self) -> torch.Size:
        return self.value.shape

    def __add__(self, other): return add(self, other)
    def __radd__(self, other): return add(other, self)
    def __sub__(self, other): return sub(self, other)
    def __rsub__(self, other): return sub(other, self)
    def __mul__(self, other): return mul(self, other)
    def __rmul__(self, other): return mul(other, self)
    def __truediv__(self, other): return div(self, other)
    def __rtruediv__(self, other): return div(other, self)
    def __matmul__(self, other): return matmul(self, other)
    def __rmatmul__(self, other): return matmul(other, self)
    def __neg__(self): return neg(self)
    def __pos__(self): return self
    def __pow__(self, c): return pow(self, c)

    def __rpow__(self, base):
        raise TypeError("pow: the exponent must be a constant (a ** x is not an elementary operation here)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value.tolist() if self.value.numel() <= 8 else tuple(self.value.shape)})"


def _value(a) -> Tensor:
    if isinstance(a, Traced):
        return a.value
    if isinstance(a, Tensor):
        return a
    if isinstance(a, numbers.Real) and not isinstance(a, bool):
        return torch.tensor(float(a), dtype=torch.float64)
    raise TypeError(f"expected a number, a tensor or a program variable, got {type(a).__name__}")


def apply(prim: P.Primitive, *args, **params):
    """z = h(args): evaluate, then record (reverse mode) or push the tangent (forward mode)."""
    values = tuple(_value(a) for a in args)
    z = prim.fn(*values, **params)
    traced = [a for a in args if isinstance(a, Traced)]
    if not traced:
        plain = all(isinstance(a, numbers.Real) for a in args)
        return z.item() if plain else z
    kind = type(traced[0])
    if any(type(a) is not kind for a in traced):
        raise TypeError(f"{prim.name}: cannot mix variables of different differentiation modes")
    return kind.record(prim, args, values, z, params)


# ------------------------------------------------------------------------------------------- scalars
def add(a, b): return apply(P.ADD, a, b)
def sub(a, b): return apply(P.SUB, a, b)
def mul(a, b): return apply(P.MUL, a, b)
def div(a, b): return apply(P.DIV, a, b)
def neg(a): return apply(P.NEG, a)
def sin(a): return apply(P.SIN, a)
def cos(a): return apply(P.COS, a)
def exp(a): return apply(P.EXP, a)
def log(a): return apply(P.LOG, a)
def tanh(a): return apply(P.TANH, a)
def sigmoid(a): return apply(P.SIGMOID, a)
def relu(a): return apply(P.RELU, a)


def pow(a, c):  # noqa: A001  the contract's name
    """a ** c for a constant exponent c."""
    if isinstance(c, Traced) or not isinstance(c, numbers.Real) or isinstance(c, bool):
        raise TypeError(f"pow: the exponent c must be a constant number, got {type(c).__name__}")
    return apply(P.POW, a, c=float(c))


# ------------------------------------------------------------------------------------------- tensors
def matmul(a, b): return apply(P.MATMUL, a, b)
def sum(x, dim=None, keepdim=False): return apply(P.SUM, x, dim=dim, keepdim=keepdim)  # noqa: A001
def mean(x, dim=None, keepdim=False): return apply(P.MEAN, x, dim=dim, keepdim=keepdim)
def reshape(x, shape): return apply(P.RESHAPE, x, shape=tuple(shape))
def transpose(x, dim0=-2, dim1=-1): return apply(P.TRANSPOSE, x, dim0=dim0, dim1=dim1)
