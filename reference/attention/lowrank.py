"""Low-rank attention: Linformer (Wang et al., 2020; lecture 001, "Low-Rank approximations").

Project the T keys and values down to k rows with learned (k, T) matrices E and F, then attend:

    out = softmax(Q (E K)^T / sqrt(D)) (F V)      Q (B, H, T, D); E K, F V (B, H, k, D)

Cost O(T · k · D) instead of O(T^2 · D). With E = F = I_T it is ordinary attention.
"""

from __future__ import annotations

import torch

from fmspec.reference.attention.dense import check_qkv, check_tensor, scaled_dot_product


def linformer(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, e: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """softmax(q (e k)^T / sqrt(D)) (f v), with e, f of shape (k, T)."""
    check_qkv(q, k, v)
    t = k.shape[-2]
    for name, p in (("e", e), ("f", f)):
        check_tensor(name, p)
        if p.dim() != 2 or p.shape[1] != t:
            raise ValueError(f"{name}.shape={tuple(p.shape)}, expected (k, T={t})")
        if p.dtype != q.dtype:
            raise ValueError(f"{name}.dtype={p.dtype} differs from q.dtype={q.dtype}")
    if f.shape[0] != e.shape[0]:
        raise ValueError(f"f.shape={tuple(f.shape)}: must project to as many rows as e {tuple(e.shape)}")
    k_low = e @ k  # (B, H, k, D)
    v_low = f @ v  # (B, H, k, Dv)
    return scaled_dot_product(q, k_low, v_low)
