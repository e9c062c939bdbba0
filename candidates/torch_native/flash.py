"""flash from torch SDPA (``torch.nn.functional.scaled_dot_product_attention``), which picks a fused
FlashAttention/memory-efficient/cuDNN kernel on GPU and a fused flash kernel on CPU.

Differences from the contract, and how they show:

* ``return_lse=True``: SDPA returns no log-sum-exp (the private ``_scaled_dot_product_*`` ops do, but its
  gradient is not supported), so it raises ``NotImplementedError``: the lse tests report *missing*;
* ``block_q``/``block_k``: SDPA chooses its own tiles; the arguments are validated and otherwise ignored;
* ``Tk = 0`` (no key at all): handled here (zeros), since SDPA would return NaN for such rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def flash_attention(q, k, v, causal=False, scale=None, return_lse=False, block_q=None, block_k=None):
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            raise ValueError(f"{name} must be a 4-dim (B, H, T, D) tensor")
    if q.dtype not in FLOAT_DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(f"q, k, v must share one of {FLOAT_DTYPES}, got {q.dtype}, {k.dtype}, {v.dtype}")
    if k.shape[:2] != q.shape[:2] or k.shape[-1] != q.shape[-1] or v.shape != k.shape:
        raise ValueError(f"shapes q={tuple(q.shape)}, k={tuple(k.shape)}, v={tuple(v.shape)} do not match")
    for name, b in (("block_q", block_q), ("block_k", block_k)):
        if b is not None and (not isinstance(b, int) or isinstance(b, bool) or b < 1):
            raise ValueError(f"{name} must be a positive int or None, got {b!r}")
    if return_lse:
        raise NotImplementedError("torch SDPA returns no differentiable log-sum-exp")
    if k.shape[2] == 0:
        return q * 0.0  # no visible key: zeros (and a zero gradient for q)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal), scale=scale)
