"""Linear (kernel) attention and Performer's random features (lecture 001, "Low-Rank approximations or
Kernels"; Katharopoulos et al., 2020; Choromanski et al., 2021).

Replace the similarity exp(q·k) by a dot product of positive features, sim(q, k) = φ(q)·φ(k):

    out_i = φ(q_i)^T S / φ(q_i)^T z,     S = Σ_j φ(k_j) v_j^T  (F, Dv),   z = Σ_j φ(k_j)  (F,)

S and z are summed once, so the cost is O(T · F · Dv) instead of O(T^2 · D). Causal: S_i and z_i are the
prefix sums over j <= i; the result equals the quadratic form A = (φ(Q) φ(K)^T) ⊙ [j <= i],
out = A V / (A 1), without ever forming A.

``linear``: φ(x) = elu(x) + 1 ("elu1", Katharopoulos et al.), or any callable (..., D) -> (..., F) with
positive values.

``performer`` (FAVOR+ with i.i.d. Gaussian features): with x' = x / D^(1/4) and ω_1..ω_m ~ N(0, I_D),

    φ(x) = exp(ω_r · x' - |x'|^2 / 2) / sqrt(m),   r = 1..m,     E[φ(q)·φ(k)] = exp(q·k / sqrt(D))

an unbiased estimate of softmax attention's kernel with scale 1/sqrt(D); its error falls like 1/sqrt(m).
The ω come from ``torch.Generator().manual_seed(seed)`` in float64. Before exp, each query row's features
are shifted by their maximum and the keys' by the maximum over all keys of a head: constants that cancel
between numerator and denominator.

Worked example: with φ = 1 (a constant feature), every query gets the mean of v (non-causal) or the
running mean v_0..v_i (causal).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from fmspec.reference.attention.dense import check_qkv
from fmspec.reference.attention.masks import check_int


def elu1(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = elu(x) + 1 > 0."""
    return F.elu(x) + 1.0


FEATURE_MAPS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"elu1": elu1}


def kernel_attention(fq: torch.Tensor, fk: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """out_i = φ(q_i)^T S / φ(q_i)^T z with features fq (B, H, Tq, F), fk (B, H, Tk, F)."""
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {causal!r}")
    if causal:
        if fq.shape[-2] != fk.shape[-2]:
            raise ValueError(f"causal needs Tq == Tk, got q {fq.shape[-2]} and k {fk.shape[-2]}")
        s = (fk.unsqueeze(-1) * v.unsqueeze(-2)).cumsum(dim=-3)  # (B, H, T, F, Dv): S_i = Σ_{j<=i} φ(k_j) v_j^T
        z = fk.cumsum(dim=-2)  # (B, H, T, F): z_i = Σ_{j<=i} φ(k_j)
        num = (fq.unsqueeze(-2) @ s).squeeze(-2)  # (B, H, T, Dv)
        den = (fq * z).sum(dim=-1, keepdim=True)  # (B, H, T, 1)
    else:
        s = fk.transpose(-2, -1) @ v  # (B, H, F, Dv)
        z = fk.sum(dim=-2)  # (B, H, F)
        num = fq @ s  # (B, H, Tq, Dv)
        den = (fq @ z.unsqueeze(-1))  # (B, H, Tq, 1)
    return num / torch.where(den > 0, den, torch.ones_like(den))


def linear(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, feature_map="elu1", causal: bool = False) -> torch.Tensor:
    """Linear attention with feature map φ ("elu1" or a callable); causal by prefix sums."""
    check_qkv(q, k, v)
    if callable(feature_map):
        phi = feature_map
    elif feature_map in FEATURE_MAPS:
        phi = FEATURE_MAPS[feature_map]
    else:
        raise ValueError(f"feature_map must be one of {', '.join(FEATURE_MAPS)} or a callable, got {feature_map!r}")
    return kernel_attention(phi(q), phi(k), v, causal)


def positive_features(x: torch.Tensor, omega: torch.Tensor, per_row: bool) -> torch.Tensor:
    """exp(ω · x - |x|^2 / 2) / sqrt(m), shifted by a maximum (per row, or per head) that cancels later."""
    proj = x @ omega.T  # (B, H, T, m)
    logits = proj - (x * x).sum(dim=-1, keepdim=True) / 2
    top = logits.amax(dim=-1, keepdim=True) if per_row else logits.amax(dim=(-2, -1), keepdim=True)
    return torch.exp(logits - top.detach()) / math.sqrt(omega.shape[0])


def performer(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_features: int, seed: int,
              causal: bool = False) -> torch.Tensor:
    """FAVOR+ approximation of softmax attention (scale 1/sqrt(D)) with n_features random features."""
    check_qkv(q, k, v)
    check_int("n_features", n_features, 1)
    check_int("seed", seed, 0)
    d = q.shape[-1]
    gen = torch.Generator().manual_seed(seed)
    omega = torch.randn(n_features, d, generator=gen, dtype=torch.float64).to(q.dtype).to(q.device)  # (m, D)
    shrink = d ** -0.25  # q·k / sqrt(D) = (q / D^(1/4)) · (k / D^(1/4))
    fq = positive_features(q * shrink, omega, per_row=True)  # (B, H, Tq, m)
    fk = positive_features(k * shrink, omega, per_row=False)  # (B, H, Tk, m)
    return kernel_attention(fq, fk, v, causal)
