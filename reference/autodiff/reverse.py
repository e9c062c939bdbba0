"""Reverse mode: record the trace z_0..z_T, then sweep it backwards (lecture 003, "The Reverse Mode of AD").

Forward pass: compute f(w) and store every intermediate z_t on a tape, each with its parents.
Backward pass: dz_T/dz_T = 1, then for t = T-1, ..., 0

    dz_T/dz_t = sum over children c of t of  dz_T/dz_c · dz_c/dz_t

The sweep below visits each node once, from the output back, and pushes its adjoint dz_T/dz_c to its
parents: a parent with several children receives one term per child and the terms are *added* (a
variable used twice, x·x, gets 2x). Each local derivative dz_c/dz_t is computed once, so the backward
pass costs a constant multiple of the forward pass (Baur and Strassen, 1983: at most 5x).
"""

from __future__ import annotations

import numbers
from typing import Callable, Sequence

import torch
from torch import Tensor

from fmspec.reference.autodiff import ops
from fmspec.reference.autodiff import primitives as P


class Var(ops.Traced):
    """z_t on a tape: its value, its parents (None for a constant argument) and the h that made it."""

    def __init__(self, value: Tensor, tape: list, prim: P.Primitive | None = None, parents: tuple = (),
                 args: tuple = (), params: dict | None = None):
        self.value, self.tape, self.prim, self.parents = value, tape, prim, parents
        self.args, self.params = args, params or {}
        self.index = len(tape)  # t: the position on the tape, parents always come first
        tape.append(self)

    @classmethod
    def record(cls, prim, args, values, z, params):
        tapes = {id(a.tape): a.tape for a in args if isinstance(a, Var)}
        if len(tapes) != 1:
            raise ValueError(f"{prim.name}: variables from different grad calls cannot be combined")
        (tape,) = tapes.values()
        parents = tuple(a if isinstance(a, Var) else None for a in args)
        return cls(z, tape, prim, parents, values, params)


def backward(out: Var, seed: Tensor) -> list[Tensor | None]:
    """The adjoints dz_T/dz_t of every node on ``out``'s tape (None where z_T does not depend on z_t)."""
    tape = out.tape
    adjoint: list[Tensor | None] = [None] * len(tape)
    adjoint[out.index] = seed  # dz_T/dz_T = 1 (or the cotangent of a vjp)
    for t in range(out.index, -1, -1):
        node, g = tape[t], adjoint[t]
        if g is None or node.prim is None:  # no path to z_T, or an input z_0
            continue
        local = node.prim.vjp(g, node.value, *node.args, **node.params)  # g · dz_t/dz_p for every parent p
        for parent, term in zip(node.parents, local):
            if parent is not None:  # accumulate over the children of the parent
                prev = adjoint[parent.index]
                adjoint[parent.index] = term if prev is None else prev + term
    return adjoint


def trace(f: Callable, xs: Sequence) -> tuple[list[Var], object]:
    """Run ``f(ops, *inputs)`` on fresh input nodes z_0 of a new tape; the inputs and what f returned."""
    tape: list = []
    inputs = [Var(x, tape) for x in xs]
    return inputs, f(ops, *inputs)


def as_tensors(xs: Sequence, name: str) -> tuple[list[Tensor], bool]:
    """The inputs as float64 tensors, and whether they were Python numbers (scalar tier)."""
    if all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in xs):
        return [torch.tensor(float(x), dtype=torch.float64) for x in xs], True
    if all(isinstance(x, Tensor) for x in xs):
        if any(not x.is_floating_point() for x in xs):
            raise TypeError(f"{name} must be floating-point tensors")
        return [x.detach() for x in xs], False
    raise TypeError(f"{name} must be all real numbers or all tensors, got {[type(x).__name__ for x in xs]}")


def vjp(f: Callable, xs: Sequence[Tensor], cotangent: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
    """(f(xs), vᵀ J): the value and the cotangent v pulled back to every input (input shapes)."""
    values, scalar = as_tensors(list(xs), "xs")
    inputs, out = trace(f, values)
    out_value = out.value if isinstance(out, Var) else ops._value(out)
    cot = torch.as_tensor(cotangent, dtype=out_value.dtype)
    if cot.shape != out_value.shape:
        raise ValueError(f"cotangent has shape {tuple(cot.shape)}, f returned shape {tuple(out_value.shape)}")
    if not isinstance(out, Var):  # f does not depend on its inputs
        return out_value, tuple(torch.zeros_like(x) for x in values)
    adjoint = backward(out, cot)
    grads = tuple(adjoint[x.index] if adjoint[x.index] is not None else torch.zeros_like(x.value) for x in inputs)
    return out_value, grads


def grad(f: Callable, *xs):
    """(f(xs), ∇f(xs)) by reverse mode; f must return a scalar. Floats in, floats out; tensors in, tensors out."""
    if not xs:
        raise ValueError("grad: xs must hold at least one input")
    values, scalar = as_tensors(xs, "xs")
    inputs, out = trace(f, values)
    if isinstance(out, (list, tuple)) or not isinstance(out, (ops.Traced, Tensor, numbers.Real)):
        raise TypeError(f"grad: f must return a scalar, got {type(out).__name__}")
    out_value = out.value if isinstance(out, Var) else ops._value(out)
    if out_value.numel() != 1:
        raise ValueError(f"grad: f must return a scalar, got shape {tuple(out_value.shape)} (use vjp)")
    if isinstance(out, Var):
        adjoint = backward(out, torch.ones_like(out.value))  # dz_T/dz_T = 1
        grads = [adjoint[x.index] if adjoint[x.index] is not None else torch.zeros_like(x.value) for x in inputs]
    else:
        grads = [torch.zeros_like(x) for x in values]
    if scalar:
        return out_value.item(), tuple(g.item() for g in grads)
    return out_value.reshape(()), tuple(grads)
