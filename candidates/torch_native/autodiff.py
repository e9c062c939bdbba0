"""autodiff from torch itself: ``ops`` are torch functions, grad and vjp are torch.autograd.grad, jvp is
torch.autograd.functional.jvp (the double-vjp trick, so no forward-mode kernels are needed).

Differences from the reference, all inside the contract:
- outside an operation's domain torch returns inf or nan instead of raising (log(-1) = nan, 1/0 = inf),
  in both modes alike;
- scalars travel as 0-d float64 tensors and come back as Python floats.
"""

from __future__ import annotations

import numbers
import types
from typing import Callable, Sequence

import torch
from torch import Tensor

ops = types.SimpleNamespace(
    add=torch.add, sub=torch.sub, mul=torch.mul, div=torch.div, neg=torch.neg, pow=torch.pow,
    sin=torch.sin, cos=torch.cos, exp=torch.exp, log=torch.log, tanh=torch.tanh, sigmoid=torch.sigmoid,
    relu=torch.relu, matmul=torch.matmul,
    sum=lambda x, dim=None, keepdim=False: x.sum() if dim is None else x.sum(dim, keepdim=keepdim),
    mean=lambda x, dim=None, keepdim=False: x.mean() if dim is None else x.mean(dim, keepdim=keepdim),
    reshape=torch.reshape, transpose=lambda x, dim0=-2, dim1=-1: x.transpose(dim0, dim1),
)


def _inputs(xs: Sequence, name: str) -> tuple[list[Tensor], bool]:
    if all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in xs):
        return [torch.tensor(float(x), dtype=torch.float64) for x in xs], True
    if all(isinstance(x, Tensor) and x.is_floating_point() for x in xs):
        return [x.detach().clone() for x in xs], False
    raise TypeError(f"{name} must be all real numbers or all floating-point tensors")


def _output(out, name: str) -> Tensor:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, numbers.Real) and not isinstance(out, bool):
        return torch.tensor(float(out), dtype=torch.float64)
    raise TypeError(f"{name}: f must return a tensor or a number, got {type(out).__name__}")


def _pull(out: Tensor, xs: list[Tensor], cotangent: Tensor) -> list[Tensor]:
    if not out.requires_grad:  # f does not depend on its inputs
        return [torch.zeros_like(x) for x in xs]
    grads = torch.autograd.grad(out, xs, grad_outputs=cotangent, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(xs, grads)]


def grad(f: Callable, *xs):
    if not xs:
        raise ValueError("grad: xs must hold at least one input")
    leaves, scalar = _inputs(xs, "xs")
    leaves = [x.requires_grad_() for x in leaves]
    out = _output(f(ops, *leaves), "grad")
    if out.numel() != 1:
        raise ValueError(f"grad: f must return a scalar, got shape {tuple(out.shape)}")
    grads = _pull(out, leaves, torch.ones_like(out))
    if scalar:
        return out.item(), tuple(g.item() for g in grads)
    return out.detach().reshape(()), tuple(grads)


def vjp(f: Callable, xs: Sequence[Tensor], cotangent: Tensor):
    leaves, _ = _inputs(list(xs), "xs")
    leaves = [x.requires_grad_() for x in leaves]
    out = _output(f(ops, *leaves), "vjp")
    if tuple(cotangent.shape) != tuple(out.shape):
        raise ValueError(f"vjp: cotangent has shape {tuple(cotangent.shape)}, f returned {tuple(out.shape)}")
    return out.detach(), tuple(_pull(out, leaves, cotangent.to(out.dtype)))


def jvp(f: Callable, xs: Sequence, tangents: Sequence):
    xs, tangents = list(xs), list(tangents)
    if len(xs) != len(tangents):
        raise ValueError(f"jvp: tangents has {len(tangents)} entries, xs has {len(xs)}")
    primals, scalar = _inputs(xs, "xs")
    dots, _ = _inputs(tangents, "tangents")
    for i, (x, u) in enumerate(zip(primals, dots)):
        if x.shape != u.shape:
            raise ValueError(f"jvp: tangents[{i}] has shape {tuple(u.shape)}, xs[{i}] has {tuple(x.shape)}")
    value, tangent = torch.autograd.functional.jvp(lambda *a: _output(f(ops, *a), "jvp"), tuple(primals), tuple(dots))
    if scalar:
        if value.numel() != 1:
            raise ValueError(f"jvp: f returned shape {tuple(value.shape)} for scalar inputs")
        return value.item(), tangent.item()
    return value, tangent
