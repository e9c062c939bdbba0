"""Oracle, strategies and call helpers of the flash suite (imported ``as fh``).

Generic parts that other attention-like suites could share: :func:`dense_attention` (the float64 oracle
with a top-left causal mask), :func:`saved_tensor_shapes` (what autograd keeps for the backward).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from hypothesis import strategies as st

from fmspec.suites import asserts as ah
from fmspec.suites import strategies as hh

FEATURE = "flash.flash_attention"
CPU_BLOCKS = st.integers(1, 6)  # any block size works in the PyTorch version
GPU_BLOCKS = st.sampled_from([16, 32, 64, 128])  # what Triton-style kernels take


def dense_attention(q, k, v, causal: bool = False, scale: float | None = None):
    """softmax(scale · q kᵀ) v and the row log-sum-exp, computed densely in q's dtype (float64 for the oracle).

    Causal is top-left aligned: query i sees keys j <= i. A row with no key gives 0 and lse -inf."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-1, -2)) * scale  # (B, H, Tq, Tk)
    if causal:
        future = torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device).triu(1)
        s = s.masked_fill(future, float("-inf"))
    lse = torch.logsumexp(s, -1)  # (B, H, Tq)
    p = torch.softmax(s, -1).nan_to_num(0.0)
    return p @ v, lse


def gradient_term_scales(q, k, v, do, dlse=None, causal: bool = False, scale: float | None = None) -> dict:
    """The largest sum of absolute terms behind each element of dQ, dK, dV (float64), for ``assert_close(scale=)``.

    With dS = P ∘ (dO Vᵀ − delta), delta_i = rowsum(dO ∘ O)_i − dlse_i, the terms of dQ = scale · dS K are
    bounded by scale · |dS|·|K| with |dS| <= P ∘ (|dO Vᵀ| + |delta|); likewise dK = scale · dSᵀ Q and
    dV = Pᵀ dO. A row of dS sums to 0 (softmax's Jacobian), so dQ and dK can be far smaller than their terms:
    one query and two keys give dK_1 = -dK_2, both the difference of two nearly equal terms."""
    q, k, v, do = (t.detach().to(torch.float64).cpu() for t in (q, k, v, do))
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    o, lse = dense_attention(q, k, v, causal=causal, scale=scale)
    p = torch.exp(scale * q @ k.transpose(-1, -2) - lse[..., None]).nan_to_num(0.0)  # (B, H, Tq, Tk)
    if causal:
        p = p.masked_fill(torch.ones(p.shape[-2:], dtype=torch.bool).triu(1), 0.0)
    delta = (do * o).sum(-1)  # (B, H, Tq)
    if dlse is not None:
        delta = delta - dlse.detach().to(torch.float64).cpu()
    ds = p * ((do @ v.transpose(-1, -2)).abs() + delta.abs()[..., None])  # bound on |dS|, (B, H, Tq, Tk)
    return {"dq": (scale * ds @ k.abs()).max().item(), "dk": (scale * ds.transpose(-1, -2) @ q.abs()).max().item(),
            "dv": (p.transpose(-1, -2) @ do.abs()).max().item()}


def lengths(block: int) -> st.SearchStrategy[int]:
    """The sequence lengths that exercise tiling: 1, block-1, block, block+1, 2·block+3."""
    return st.sampled_from(sorted({max(1, t) for t in (1, block - 1, block, block + 1, 2 * block + 3)}))


def qkv(shape_q, shape_k, seed: int, dtype=torch.float64, device="cpu", scale: float = 1.0):
    """q, k, v drawn in float64 (then cast): the oracle sees exactly what the candidate sees."""
    q = hh.randn(shape_q, seed, torch.float64, scale=scale)
    k = hh.randn(shape_k, seed + 1, torch.float64, scale=scale)
    v = hh.randn(shape_k, seed + 2, torch.float64)
    return tuple(t.to(dtype=dtype, device=device) for t in (q, k, v))


def call(candidate, q, k, v, **kw):
    """The candidate's flash_attention, checked for in-place changes; returns (out, where)."""
    where = ah.snippet(FEATURE, q, k, v, **kw)
    out = ah.call(candidate.flash.flash_attention, FEATURE, q, k, v, **kw)
    return out, where


def grads(candidate, q, k, v, do, dlse=None, **kw):
    """(out, lse or None, (dq, dk, dv), where) of the candidate for the loss sum(out·do) [+ sum(lse·dlse)]."""
    xs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    if dlse is not None:
        (o, lse), where = call(candidate, *xs, return_lse=True, **kw)
        loss = (o.to(do.dtype) * do).sum() + (lse.to(dlse.dtype) * dlse).sum()
    else:
        o, where = call(candidate, *xs, **kw)
        lse, loss = None, (o.to(do.dtype) * do).sum()
    return o, lse, torch.autograd.grad(loss, xs), where


def oracle_grads(q, k, v, do, dlse=None, causal=False, scale=None):
    """Out, lse and (dq, dk, dv) of dense attention by torch autograd (in q's dtype)."""
    xs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    o, lse = dense_attention(*xs, causal=causal, scale=scale)
    loss = (o * do.to(o.dtype)).sum()
    if dlse is not None:
        loss = loss + (lse * dlse.to(lse.dtype)).sum()
    return o.detach(), lse.detach(), torch.autograd.grad(loss, xs)


@contextmanager
def saved_tensor_shapes():
    """Collects the shape of every tensor autograd saves for the backward inside the block."""
    shapes: list[tuple[int, ...]] = []

    def pack(t):
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield shapes
