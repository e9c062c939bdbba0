"""The elementary functions h of a straight-line program and their local derivatives dz/dz_p.

Each step of a program is z_t = h_t(parents). To run it in both modes, every h carries two rules:

    vjp(g, z, *args)         the reverse-mode rule: g · dz/dz_p for every parent p (g = dz_T/dz)
    jvp(tangents, z, *args)  the forward-mode rule: sum_p dz/dz_p · tangent_p

For an elementwise h both come from one list of partial derivatives (``elementwise``), written as the
lecture writes them: sin' = cos, exp' = exp (= z), tanh' = 1 - z², sigmoid' = z(1 - z). Broadcasting is
undone in reverse mode by summing the gradient over the broadcast dimensions (``unbroadcast``), so a
gradient always has its input's shape. The linear tensor maps (matmul, sum, mean, reshape, transpose)
have their own pair of rules.

Domain: log of a value <= 0 and pow of a negative base by a non-integer raise ValueError, a division by
zero raises ZeroDivisionError, in the forward pass, so both modes (and a plain evaluation) fail alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor


@dataclass(frozen=True)
class Primitive:
    """One elementary function h: its value and its two derivative rules."""

    name: str
    fn: Callable[..., Tensor]  # z = h(*args, **params)
    vjp: Callable[..., tuple]  # (g, z, *args, **params) -> one gradient per arg, each of that arg's shape
    jvp: Callable[..., Tensor]  # (tangents, z, *args, **params) -> tangent of z; a tangent is None for a constant


def unbroadcast(g: Tensor, shape: torch.Size) -> Tensor:
    """Sum ``g`` over the dimensions that broadcasting added or stretched, back to ``shape``.

    Example: x (3, 1) + y (4,) -> z (3, 4); dz/dx = g.sum(1, keepdim=True) (3, 1), dz/dy = g.sum(0) (4,).
    """
    while g.dim() > len(shape):
        g = g.sum(0)  # a leading dimension broadcasting added
    for i, n in enumerate(shape):
        if n == 1 and g.shape[i] != 1:
            g = g.sum(i, keepdim=True)  # a size-1 dimension broadcasting stretched
    return g


def elementwise(name: str, fn: Callable[..., Tensor], *partials: Callable[..., Tensor | float]) -> Primitive:
    """An elementwise h from its value and its partial derivatives ``partials[i](z, *args) = dz/d args[i]``."""

    def vjp(g, z, *args, **params):
        return tuple(unbroadcast(g * d(z, *args, **params), a.shape) for d, a in zip(partials, args))

    def jvp(tangents, z, *args, **params):
        out = None
        for d, t in zip(partials, tangents):
            if t is not None:  # dz = sum_p dz/dz_p · dz_p
                term = t * d(z, *args, **params)
                out = term if out is None else out + term
        return torch.broadcast_to(out, z.shape)

    return Primitive(name, fn, vjp, jvp)


# ------------------------------------------------------------------------------------ domain checks
def _log(a: Tensor) -> Tensor:
    if bool((a <= 0).any()):
        raise ValueError(f"log: argument must be > 0, got {_first(a, a <= 0)}")
    return torch.log(a)


def _div(a: Tensor, b: Tensor) -> Tensor:
    if bool((b == 0).any()):
        raise ZeroDivisionError("div: division by zero")
    return a / b


def _pow(a: Tensor, c: float) -> Tensor:
    if c != math.floor(c) and bool((a < 0).any()):
        raise ValueError(f"pow: negative base {_first(a, a < 0)} with the non-integer exponent {c}")
    if c < 0 and bool((a == 0).any()):
        raise ZeroDivisionError(f"pow: zero to the negative power {c}")
    return a**c


def _first(a: Tensor, bad: Tensor) -> float:
    return a[bad].reshape(-1)[0].item()


# --------------------------------------------------------------------------- elementwise primitives
ADD = elementwise("add", torch.add, lambda z, a, b: 1.0, lambda z, a, b: 1.0)
SUB = elementwise("sub", torch.sub, lambda z, a, b: 1.0, lambda z, a, b: -1.0)
MUL = elementwise("mul", torch.mul, lambda z, a, b: b, lambda z, a, b: a)  # product rule
DIV = elementwise("div", _div, lambda z, a, b: 1.0 / b, lambda z, a, b: -z / b)  # d(a/b)/db = -a/b²
NEG = elementwise("neg", torch.neg, lambda z, a: -1.0)
POW = elementwise("pow", _pow, lambda z, a, c: c * a ** (c - 1))  # the exponent c is a constant
SIN = elementwise("sin", torch.sin, lambda z, a: torch.cos(a))
COS = elementwise("cos", torch.cos, lambda z, a: -torch.sin(a))
EXP = elementwise("exp", torch.exp, lambda z, a: z)
LOG = elementwise("log", _log, lambda z, a: 1.0 / a)
TANH = elementwise("tanh", torch.tanh, lambda z, a: 1.0 - z * z)
SIGMOID = elementwise("sigmoid", torch.sigmoid, lambda z, a: z * (1.0 - z))
RELU = elementwise("relu", torch.relu, lambda z, a: (a > 0).to(a.dtype))  # relu'(0) = 0, as torch


# ------------------------------------------------------------------------------ linear tensor maps
def _as_matrices(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """1-D operands as a row (left) or a column (right), as torch.matmul treats them."""
    return (a[None, :] if a.dim() == 1 else a), (b[:, None] if b.dim() == 1 else b)


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    if a.dim() not in (1, 2) or b.dim() not in (1, 2):
        raise ValueError(f"matmul: operands must be 1-D or 2-D, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not chain")
    return a @ b


def _matmul_vjp(g, z, a, b):
    a2, b2 = _as_matrices(a, b)  # (m, k), (k, n)
    g2 = g.reshape(a2.shape[0], b2.shape[1])  # (m, n)
    return (g2 @ b2.T).reshape(a.shape), (a2.T @ g2).reshape(b.shape)  # dA = G Bᵀ, dB = Aᵀ G


def _matmul_jvp(tangents, z, a, b):
    ta, tb = tangents
    terms = [t for t in ((ta @ b) if ta is not None else None, (a @ tb) if tb is not None else None) if t is not None]
    return terms[0] if len(terms) == 1 else terms[0] + terms[1]  # d(AB) = dA B + A dB


def _reduced_count(x: Tensor, dim) -> int:
    if dim is None:
        return x.numel()
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return math.prod(x.shape[d] for d in dims)


def _expand_back(g: Tensor, x: Tensor, dim, keepdim: bool) -> Tensor:
    """The gradient of a reduction: g copied back over the reduced dimensions."""
    if dim is not None and not keepdim:
        for d in sorted(d % x.dim() for d in ((dim,) if isinstance(dim, int) else dim)):
            g = g.unsqueeze(d)
    return g.expand(x.shape)


def _sum(x, dim=None, keepdim=False):
    return x.sum() if dim is None else x.sum(dim, keepdim=keepdim)


def _mean(x, dim=None, keepdim=False):
    return x.mean() if dim is None else x.mean(dim, keepdim=keepdim)


MATMUL = Primitive("matmul", _matmul, _matmul_vjp, _matmul_jvp)
SUM = Primitive(
    "sum", _sum,
    lambda g, z, x, dim=None, keepdim=False: (_expand_back(g, x, dim, keepdim),),
    lambda ts, z, x, dim=None, keepdim=False: _sum(ts[0], dim, keepdim),
)
MEAN = Primitive(
    "mean", _mean,
    lambda g, z, x, dim=None, keepdim=False: (_expand_back(g, x, dim, keepdim) / _reduced_count(x, dim),),
    lambda ts, z, x, dim=None, keepdim=False: _mean(ts[0], dim, keepdim),
)
RESHAPE = Primitive(
    "reshape", lambda x, shape: x.reshape(shape),
    lambda g, z, x, shape: (g.reshape(x.shape),),
    lambda ts, z, x, shape: ts[0].reshape(shape),
)
TRANSPOSE = Primitive(
    "transpose", lambda x, dim0=-2, dim1=-1: x.transpose(dim0, dim1),
    lambda g, z, x, dim0=-2, dim1=-1: (g.transpose(dim0, dim1),),
    lambda ts, z, x, dim0=-2, dim1=-1: ts[0].transpose(dim0, dim1),
)
