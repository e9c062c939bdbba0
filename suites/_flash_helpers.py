"""Strategies and oracle of the flash suite (imported ``as fh``).

Attention itself is the suites' shared oracle (``orc.dense_attention``: dense, float64, top-left causal,
with the row log-sum-exp) and its inputs the shared ``ss.qkv``; what is flash's own is here:

- **strategies**: block sizes (any on CPU, a Triton kernel's on CUDA) and the sequence lengths that
  exercise tiling, the revealing tilings (:data:`TILINGS`) drawn first;
- **oracle**: gradients of dense attention by torch.autograd, the lse's included, and the size of the
  terms each gradient and the lse sum (for ``ah.assert_close(scale=)``).
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


# {block_q, block_k, T}: the tilings that reveal the usual bugs, drawn first (and shrunk to) by tilings()
TILINGS = {
    "cpu": [{"block_q": 4, "block_k": 4, "T": 5},  # a partial last tile of one row and one key: block + 1
            {"block_q": 3, "block_k": 5, "T": 11},  # query and key blocks of different sizes, both partial at the end
            {"block_q": 1, "block_k": 1, "T": 3},  # blocks of one
            {"block_q": 6, "block_k": 2, "T": 1}],  # one position, smaller than either block
    "cuda": [{"block_q": 16, "block_k": 16, "T": 17}, {"block_q": 32, "block_k": 16, "T": 35},
             {"block_q": 16, "block_k": 64, "T": 1}],
}


@st.composite
def drawn_tilings(draw, device: str) -> dict:
    blocks = GPU_BLOCKS if device == "cuda" else CPU_BLOCKS
    block_q, block_k = draw(blocks, "block_q"), draw(blocks, "block_k")
    return {"block_q": block_q, "block_k": block_k, "T": draw(lengths(block_k), "T")}


def tilings(device: str) -> st.SearchStrategy[dict]:
    """{block_q, block_k, T}: one of :data:`TILINGS` 1 time in 3, else blocks for the device and a length of
    :func:`lengths`."""
    return st.one_of(st.sampled_from(TILINGS[device]), drawn_tilings(device), drawn_tilings(device))


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


def lse_term_scale(q: torch.Tensor, k: torch.Tensor, scale: float | None = None) -> float:
    """The size of the terms behind lse_i = m_i + log Σ_j exp(s_ij - m_i), for ``assert_close(scale=)``: the
    scores s_ij = scale · q_i · k_j are dot products that may cancel (bounded by scale · |q_i| · |k_j|), and
    the log adds at most log Tk; lse itself may be near 0 (one key whose score cancels)."""
    q, k = q.detach().to(torch.float64).cpu(), k.detach().to(torch.float64).cpu()
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    terms = scale * q.abs() @ k.abs().transpose(-1, -2)  # (B, H, Tq, Tk)
    return (terms.max().item() if terms.numel() else 0.0) + math.log(max(k.shape[-2], 1))


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
