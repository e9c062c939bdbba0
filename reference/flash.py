"""FlashAttention: exact attention in tiles, with O(T·D) memory (seeds 000, 001 and 003).

Dense attention materialises the T×T score matrix::

    S = scale · Q Kᵀ        (Tq, Tk)      scale = 1/sqrt(D) by default
    P = softmax_rows(S)     (Tq, Tk)      causal: P_ij = 0 for j > i (top-left aligned, as torch SDPA)
    O = P V                 (Tq, D)

Lecture 003 ("FlashAttention simplified") observes that row t of O only needs row t of S, so a loop over
rows needs O(T) extra memory for the same O(D·T²) flops, and that FlashAttention "just checkpoints this
approach": the backward recomputes P instead of storing it. Seed 000: "split the score matrix into blocks,
recompute". Here the rows are processed a block of ``block_q`` queries at a time, and each row's softmax
is built *online* over blocks of ``block_k`` keys (Milakov & Gimelshein, 2018; Dao et al., 2022)::

    m_new = max(m, rowmax(S_blk))                      running max
    l     = exp(m − m_new) · l + rowsum(exp(S_blk − m_new))   running sum, rescaled to the new max
    acc   = exp(m − m_new) · acc + exp(S_blk − m_new) V_blk
    O     = acc / l,     lse = m + log(l)              (natural log, one number per row)

The backward recomputes each block of P from the saved lse (P_blk = exp(S_blk − lse)); with
delta_i = Σ_d dO_id O_id − dlse_i it accumulates dV += Pᵀ dO, dS = P ∘ (dO Vᵀ − delta),
dQ += scale · dS K, dK += scale · dSᵀ Q. Saved for the backward: Q, K, V, O and lse, never a T×T tensor.

Causal block skipping: a key block that starts after a query block's last row is never visited.
A row with no visible key (only when Tk = 0) outputs zeros and lse = −inf.

Worked example (D = 1, scale = 1, one key block at a time): q = [[0]], k = [[0], [0]], v = [[1], [3]]:
block 1 gives m = 0, l = 1, acc = 1; block 2 gives m = 0, l = 2, acc = 4; O = 2, lse = log 2.

Dispatch of :func:`flash_attention`: CUDA float16/bfloat16 -> the Triton kernels of
``reference/flash_triton.py`` (the speed reference); with ``TRITON_INTERPRET=1`` in the environment,
CPU float16 -> the same kernels in Triton's interpreter; everything else -> the tiled PyTorch code below
(any device, float16/bfloat16/float32/float64, any block sizes).
"""

from __future__ import annotations

import math
import os

import torch

DEFAULT_BLOCK = 64  # block_q and block_k of the PyTorch version when not given
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# ---------------------------------------------------------------------------------------------- forward
def tiled_forward(q, k, v, causal: bool, scale: float, block_q: int, block_k: int):
    """(o, lse) by the online softmax. q (B, H, Tq, D), k and v (B, H, Tk, D); o like q, lse (B, H, Tq)."""
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    acc_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32  # low precision accumulates in fp32
    o = torch.empty(B, H, Tq, v.shape[-1], dtype=q.dtype, device=q.device)
    lse = torch.empty(B, H, Tq, dtype=acc_dtype, device=q.device)
    for i0 in range(0, Tq, block_q):
        i1 = min(i0 + block_q, Tq)
        q_blk = q[:, :, i0:i1].to(acc_dtype)  # (B, H, bq, D)
        m = torch.full((B, H, i1 - i0), -math.inf, dtype=acc_dtype, device=q.device)  # running max
        l = torch.zeros_like(m)  # running sum  # noqa: E741
        acc = torch.zeros(B, H, i1 - i0, v.shape[-1], dtype=acc_dtype, device=q.device)
        for j0 in range(0, Tk, block_k):
            if causal and j0 > i1 - 1:  # causal block skipping: the block starts after the last row
                break
            j1 = min(j0 + block_k, Tk)
            s = scale * q_blk @ k[:, :, j0:j1].to(acc_dtype).transpose(-1, -2)  # (B, H, bq, bk)
            if causal:
                s = s.masked_fill(_future(i0, i1, j0, j1, q.device), -math.inf)
            m_new = torch.maximum(m, s.amax(-1))
            m_safe = m_new.masked_fill(m_new == -math.inf, 0.0)  # a row with nothing visible yet
            p = torch.exp(s - m_safe[..., None])  # (B, H, bq, bk)
            alpha = torch.exp(m - m_safe)  # rescale what was summed under the old max
            l = alpha * l + p.sum(-1)  # noqa: E741
            acc = alpha[..., None] * acc + p @ v[:, :, j0:j1].to(acc_dtype)
            m = m_new
        empty = l == 0  # no visible key at all: output 0, lse -inf
        o[:, :, i0:i1] = (acc / l.masked_fill(empty, 1.0)[..., None]).to(q.dtype)
        lse[:, :, i0:i1] = m + torch.log(l)  # -inf + log 0 = -inf for an empty row
    return o, lse


def _future(i0: int, i1: int, j0: int, j1: int, device) -> torch.Tensor:
    """Causal mask of one block: True where key j comes after query i (top-left aligned)."""
    rows = torch.arange(i0, i1, device=device)[:, None]  # (bq, 1)
    cols = torch.arange(j0, j1, device=device)[None, :]  # (1, bk)
    return cols > rows  # (bq, bk)


# --------------------------------------------------------------------------------------------- backward
def tiled_backward(q, k, v, o, lse, do, dlse, causal: bool, scale: float, block_q: int, block_k: int):
    """(dq, dk, dv) by recomputing each block of P from the saved lse: no T×T tensor."""
    Tq, Tk = q.shape[2], k.shape[2]
    acc_dtype = lse.dtype
    delta = (do.to(acc_dtype) * o.to(acc_dtype)).sum(-1)  # (B, H, Tq): rowsum(dO ∘ O)
    if dlse is not None:
        delta = delta - dlse.to(acc_dtype)  # the lse's own gradient: d lse_i / d S_ij = P_ij
    dq = torch.zeros(q.shape, dtype=acc_dtype, device=q.device)
    dk = torch.zeros(k.shape, dtype=acc_dtype, device=q.device)
    dv = torch.zeros(v.shape, dtype=acc_dtype, device=q.device)
    lse_safe = lse.masked_fill(lse == -math.inf, 0.0)  # rows without keys have P = 0 anyway
    for j0 in range(0, Tk, block_k):
        j1 = min(j0 + block_k, Tk)
        k_blk = k[:, :, j0:j1].to(acc_dtype)  # (B, H, bk, D)
        v_blk = v[:, :, j0:j1].to(acc_dtype)
        first = (j0 // block_q) * block_q if causal else 0  # query blocks before the diagonal see none of it
        for i0 in range(first, Tq, block_q):
            i1 = min(i0 + block_q, Tq)
            q_blk = q[:, :, i0:i1].to(acc_dtype)  # (B, H, bq, D)
            do_blk = do[:, :, i0:i1].to(acc_dtype)
            s = scale * q_blk @ k_blk.transpose(-1, -2)  # (B, H, bq, bk)
            p = torch.exp(s - lse_safe[:, :, i0:i1, None])  # recomputed, never stored
            if causal:
                p = p.masked_fill(_future(i0, i1, j0, j1, q.device), 0.0)
            dv[:, :, j0:j1] += p.transpose(-1, -2) @ do_blk
            ds = p * (do_blk @ v_blk.transpose(-1, -2) - delta[:, :, i0:i1, None])  # (B, H, bq, bk)
            dq[:, :, i0:i1] += scale * ds @ k_blk
            dk[:, :, j0:j1] += scale * ds.transpose(-1, -2) @ q_blk
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


class TiledFlashAttention(torch.autograd.Function):
    """Forward by the online softmax; saves Q, K, V, O and lse; backward by recomputation."""

    @staticmethod
    def forward(ctx, q, k, v, causal, scale, block_q, block_k):
        o, lse = tiled_forward(q, k, v, causal, scale, block_q, block_k)
        ctx.save_for_backward(q, k, v, o, lse)
        ctx.config = (causal, scale, block_q, block_k)
        return o, lse

    @staticmethod
    def backward(ctx, do, dlse):
        q, k, v, o, lse = ctx.saved_tensors
        dq, dk, dv = tiled_backward(q, k, v, o, lse, do, dlse, *ctx.config)
        return dq, dk, dv, None, None, None, None


# -------------------------------------------------------------------------------------------- the contract
def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                    scale: float | None = None, return_lse: bool = False, block_q: int | None = None,
                    block_k: int | None = None):
    """softmax(scale · q kᵀ [causal]) v, in tiles, differentiable; with ``return_lse`` also the natural
    log-sum-exp of each row's scaled scores, (B, H, Tq), float32 (float64 for float64 inputs).

    q (B, H, Tq, D), k and v (B, H, Tk, D); causal is top-left aligned (query i sees keys j <= i).
    ``block_q``/``block_k`` set the tile sizes (the Triton kernel takes 16, 32, 64 or 128; default autotuned).
    """
    scale = check_arguments(q, k, v, causal, scale, return_lse, block_q, block_k)
    if _use_triton(q, block_q, block_k):
        from fmspec.reference import flash_triton

        o, lse = flash_triton.attention(q, k, v, causal=causal, scale=scale, block_q=block_q, block_k=block_k,
                                        interpret=not q.is_cuda)
    else:
        o, lse = TiledFlashAttention.apply(q, k, v, causal, scale, block_q or DEFAULT_BLOCK, block_k or DEFAULT_BLOCK)
    return (o, lse) if return_lse else o


def _use_triton(q: torch.Tensor, block_q: int | None, block_k: int | None) -> bool:
    if q.is_cuda:
        return q.dtype in (torch.float16, torch.bfloat16)
    # Triton's interpreter on CPU, when the environment asks for it: float16 only (it mishandles bfloat16),
    # and only what the kernel supports (everything else stays on the PyTorch path)
    if q.device.type != "cpu" or q.dtype != torch.float16 or os.environ.get("TRITON_INTERPRET") != "1":
        return False
    from fmspec.reference import flash_triton

    return q.shape[-1] in flash_triton.SUPPORTED_HEAD_DIMS and all(
        b is None or b in flash_triton.BLOCK_CHOICES for b in (block_q, block_k))


def check_arguments(q, k, v, causal, scale, return_lse, block_q, block_k) -> float:
    """Validate the arguments (ValueError/TypeError naming the argument); return the scale to use."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{name} must have 4 dims (B, H, T, D), got shape {tuple(t.shape)}")
    if q.dtype not in FLOAT_DTYPES:
        raise TypeError(f"q.dtype={q.dtype}: supported dtypes are float16, bfloat16, float32, float64")
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if k.device != q.device or v.device != q.device:
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if k.shape[:2] != q.shape[:2] or k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k.shape={tuple(k.shape)} must match q.shape={tuple(q.shape)} in B, H and D")
    if v.shape != k.shape:
        raise ValueError(f"v.shape={tuple(v.shape)} must equal k.shape={tuple(k.shape)}")
    if q.shape[-1] == 0:
        raise ValueError("head dim D must be >= 1")
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {causal!r}")
    if not isinstance(return_lse, bool):
        raise TypeError(f"return_lse must be a bool, got {return_lse!r}")
    for name, b in (("block_q", block_q), ("block_k", block_k)):
        if b is not None and (not isinstance(b, int) or isinstance(b, bool) or b < 1):
            raise ValueError(f"{name} must be a positive int or None, got {b!r}")
    if scale is None:
        return 1.0 / math.sqrt(q.shape[-1])
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number or None, got {scale!r}")
    return float(scale)
