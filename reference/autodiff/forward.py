"""Forward mode: carry dz_t/dz_0 · u along with z_t (lecture 003, "The Forward Mode of AD").

Each variable is a dual number (z_t, ż_t) with ż_t = dz_t/dz_0 · u for the input direction u. The
chain rule runs in program order, as the lecture writes it:

    ż_t = sum over parents p of t of  dz_t/dz_p · ż_p

so one pass gives one directional derivative ⟨∇f, u⟩; the full gradient takes d passes (u = e_1..e_d),
which is why reverse mode wins for f: R^d -> R.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from fmspec.reference.autodiff import ops
from fmspec.reference.autodiff.reverse import as_tensors


class Dual(ops.Traced):
    """(z_t, ż_t): a value and its tangent, the derivative of z_t along the input direction."""

    def __init__(self, value: Tensor, tangent: Tensor):
        self.value, self.tangent = value, tangent

    @classmethod
    def record(cls, prim, args, values, z, params):
        tangents = tuple(a.tangent if isinstance(a, Dual) else None for a in args)  # constants: no tangent
        return cls(z, prim.jvp(tangents, z, *values, **params))


def jvp(f: Callable, xs: Sequence, tangents: Sequence):
    """(f(xs), ⟨∇f(xs), tangents⟩), or J·u for a tensor-valued f. Floats in, floats out; tensors in, tensors out."""
    xs, tangents = list(xs), list(tangents)
    if len(xs) != len(tangents):
        raise ValueError(f"jvp: tangents has {len(tangents)} entries, xs has {len(xs)}")
    if not xs:
        raise ValueError("jvp: xs must hold at least one input")
    values, scalar = as_tensors(xs, "xs")
    dots, _ = as_tensors(tangents, "tangents")
    for i, (x, u) in enumerate(zip(values, dots)):
        if x.shape != u.shape:
            raise ValueError(f"jvp: tangents[{i}] has shape {tuple(u.shape)}, xs[{i}] has shape {tuple(x.shape)}")
    out = f(ops, *[Dual(x, u.to(x.dtype)) for x, u in zip(values, dots)])
    if isinstance(out, Dual):
        value, tangent = out.value, out.tangent
    else:  # f does not depend on its inputs
        value = ops._value(out)
        tangent = torch.zeros_like(value)
    if scalar:
        if value.numel() != 1:
            raise ValueError(f"jvp: f returned shape {tuple(value.shape)} for scalar inputs")
        return value.item(), tangent.item()
    return value, tangent
