"""Strategies and oracle of the flash suite (imported ``as fh``).

Attention itself is the suites' shared oracle (``orc.dense_attention``: dense, float64, top-left causal,
with the row log-sum-exp) and its inputs the shared ``ss.qkv``; what is flash's own is here:

- **strategies**: block sizes (any on CPU, a Triton kernel's on CUDA) and the sequence lengths that
  exercise tiling;
- **oracle**: gradients of dense attention by torch.autograd, the lse's included, and the size of the
  terms each gradient sums (for ``ah.assert_close(scale=)``).
"""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

from fmspec.suites import oracles as orc

# ============================================================================================ strategies
CPU_BLOCKS = st.integers(1, 6)  # any block size works in the PyTorch version
GPU_BLOCKS = st.sampled_from([16, 32, 64, 128])  # what Triton-style kernels take


def lengths(block: int) -> st.SearchStrategy[int]:
    """The sequence lengths that exercise tiling: 1, block-1, block, block+1, 2·block+3."""
    return st.sampled_from(sorted({max(1, t) for t in (1, block - 1, block, block + 1, 2 * block + 3)}))


# ================================================================================================ oracle
def oracle_grads(q, k, v, do, dlse=None, causal=False, scale=None):
    """Out, lse and (dq, dk, dv) of dense attention by torch autograd (in q's dtype), for the loss
    sum(O·dO) [+ sum(lse·dlse)]."""
    xs = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    o, lse = orc.dense_attention(*xs, causal=causal, scale=scale, return_lse=True)
    loss = (o * do.to(o.dtype)).sum()
    if dlse is not None:
        loss = loss + (lse * dlse.to(lse.dtype)).sum()
    return o.detach(), lse.detach(), torch.autograd.grad(loss, xs)


def gradient_term_scales(q, k, v, do, dlse=None, causal: bool = False, scale: float | None = None) -> dict:
    """The largest sum of absolute terms behind each element of dQ, dK, dV (float64), for ``assert_close(scale=)``.

    With dS = P ∘ (dO Vᵀ − delta), delta_i = rowsum(dO ∘ O)_i − dlse_i, the terms of dQ = scale · dS K are
    bounded by scale · |dS|·|K| with |dS| <= P ∘ (|dO Vᵀ| + |delta|); likewise dK = scale · dSᵀ Q and
    dV = Pᵀ dO. A row of dS sums to 0 (softmax's Jacobian), so dQ and dK can be far smaller than their terms:
    one query and two keys give dK_1 = -dK_2, both the difference of two nearly equal terms."""
    q, k, v, do = (t.detach().to(torch.float64).cpu() for t in (q, k, v, do))
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    o, lse = orc.dense_attention(q, k, v, causal=causal, scale=scale, return_lse=True)
    p = torch.exp(scale * q @ k.transpose(-1, -2) - lse[..., None]).nan_to_num(0.0)  # (B, H, Tq, Tk)
    if causal:
        p = p.masked_fill(~orc.causal_mask(p.shape[-2], p.shape[-1]), 0.0)
    delta = (do * o).sum(-1)  # (B, H, Tq)
    if dlse is not None:
        delta = delta - dlse.detach().to(torch.float64).cpu()
    ds = p * ((do @ v.transpose(-1, -2)).abs() + delta.abs()[..., None])  # bound on |dS|, (B, H, Tq, Tk)
    return {"dq": (scale * ds @ k.abs()).max().item(), "dk": (scale * ds.transpose(-1, -2) @ q.abs()).max().item(),
            "dv": (p.transpose(-1, -2) @ do.abs()).max().item()}
