"""Scaled dot-product and multi-head self-attention (lecture 004, "Transformer Key Idea"; Vaswani et al., 2017).

    Attention(Q, K, V) = softmax(Q K^T · s) V,        s = 1/sqrt(D) unless given

Shapes: q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv) -> (B, H, Tq, Dv); any leading dimensions work
as long as q, k and v share them. The weights W = softmax(...) are (B, H, Tq, Tk), each row a probability
distribution over the keys that row may see.

Masks are boolean, True = may attend, broadcastable to (B, H, Tq, Tk). ``causal=True`` lets query i see
keys j <= i, aligned top-left as torch's ``scaled_dot_product_attention(is_causal=True)``: with Tq != Tk,
query 0 sees key 0 only, whatever Tk is. A mask and ``causal`` combine with AND.

Fully masked rows: a query that may see no key gets weights 0 and output 0 (not the NaN of 0/0), and
its gradients are 0, finite. A key that no query may see is replaced by zeros before use, so a masked key
or value holding NaN or inf changes nothing, forward or backward.

Multi-head self-attention splits d into H heads of D_head = d/H, attends per head with 1/sqrt(D_head)
and concatenates:  MHSA(x) = concat_h(Attention(x W_q^h, x W_k^h, x W_v^h)) W_o  (W as in nn.Linear:
y = x @ W.T). Grouped-query attention (Ainslie et al., 2023) has n_kv_heads < H key/value heads; query
head h reads key/value head h // (H / n_kv_heads), consecutive query heads share one (the order of
``repeat_interleave``, as torch's ``enable_gqa``).

Worked example: q = k = [[1, 0], [0, 1]], v = [[1, 2], [3, 4]] (one head, D = 2): scores =
I/sqrt(2), row 0 weights = softmax([0.707, 0]) = [0.670, 0.330], output row 0 = [1.660, 2.660].
"""

from __future__ import annotations

import math
from numbers import Real

import torch


# ------------------------------------------------------------------------------------------ validation
def check_tensor(name: str, x: object, min_dim: int = 2) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions (..., T, D), got shape {tuple(x.shape)}")


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, same_length: bool = False) -> None:
    """q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv): same leading dims, dtype and device."""
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_tensor(name, x)
    for name, x in (("k", k), ("v", v)):
        if x.dtype != q.dtype:
            raise ValueError(f"{name}.dtype={x.dtype} differs from q.dtype={q.dtype}")
        if x.device != q.device:
            raise ValueError(f"{name} is on {x.device}, q on {q.device}")
        if x.shape[:-2] != q.shape[:-2]:
            raise ValueError(f"{name}.shape={tuple(x.shape)}: leading dims differ from q.shape={tuple(q.shape)}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k.shape={tuple(k.shape)}: head dim {k.shape[-1]} differs from q's {q.shape[-1]}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"v.shape={tuple(v.shape)}: {v.shape[-2]} values for {k.shape[-2]} keys")
    if same_length and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"q has {q.shape[-2]} positions, k has {k.shape[-2]}: this pattern is self-attention")


def check_scale(scale: object, d: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(d)
    if isinstance(scale, bool) or not isinstance(scale, Real) or not math.isfinite(scale):
        raise TypeError(f"scale must be a finite number or None, got {scale!r}")
    return float(scale)


def allowed_keys(mask: torch.Tensor | None, causal: bool, lead: torch.Size, tq: int, tk: int,
                 device: torch.device) -> torch.Tensor | None:
    """The boolean 'may attend' tensor (broadcastable to (*lead, Tq, Tk)), or None when all may attend."""
    if mask is not None:
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"mask must be a bool torch.Tensor or None, got {type(mask).__name__}")
        if mask.dtype != torch.bool:
            raise TypeError(f"mask must have dtype torch.bool (True = may attend), got {mask.dtype}")
        target = (*lead, tq, tk)
        try:
            shape = torch.broadcast_shapes(mask.shape, target)
        except RuntimeError:
            shape = None
        if shape != torch.Size(target):
            raise ValueError(f"mask.shape={tuple(mask.shape)} does not broadcast to (..., Tq, Tk)={target}")
        mask = mask.to(device)
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {causal!r}")
    if causal:
        lower = torch.ones(tq, tk, dtype=torch.bool, device=device).tril()  # (Tq, Tk): j <= i, top-left
        mask = lower if mask is None else mask & lower
    return mask


# ----------------------------------------------------------------------------------------------- kernels
def masked_softmax(scores: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """softmax over the last axis of ``scores`` restricted to ``allowed``; a row with nothing allowed is 0."""
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    top = scores.amax(dim=-1, keepdim=True).detach()  # (..., Tq, 1); -inf on a fully masked row
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(scores - top)  # exp(-inf) = 0 where masked
    total = e.sum(dim=-1, keepdim=True)
    return e / torch.where(total > 0, total, torch.ones_like(total))


def zero_unseen_keys(k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor | None):
    """Keys and values that no query may see replaced by 0, so NaN or inf there cannot leak (0 * NaN = NaN)."""
    if allowed is None:
        return k, v
    unseen = ~allowed.any(dim=-2).unsqueeze(-1)  # (..., Tk, 1)
    return k.masked_fill(unseen, 0.0), v.masked_fill(unseen, 0.0)


# --------------------------------------------------------------------------------------------- contract
def scaled_dot_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                       causal: bool = False, scale: float | None = None, return_weights: bool = False):
    """softmax(q k^T · scale, restricted to mask) v: ``(B, H, Tq, Dv)``, and the weights if asked."""
    check_qkv(q, k, v)
    tq, tk, d = q.shape[-2], k.shape[-2], q.shape[-1]
    scale = check_scale(scale, d)
    allowed = allowed_keys(mask, causal, q.shape[:-2], tq, tk, q.device)
    k, v = zero_unseen_keys(k, v, allowed)
    scores = (q @ k.transpose(-2, -1)) * scale  # (B, H, Tq, Tk)
    weights = masked_softmax(scores, allowed)  # (B, H, Tq, Tk), rows sum to 1 (or 0 if fully masked)
    out = weights @ v  # (B, H, Tq, Dv)
    return (out, weights) if return_weights else out


def multi_head(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor, w_o: torch.Tensor,
               n_heads: int, causal: bool = False, n_kv_heads: int | None = None) -> torch.Tensor:
    """Multi-head self-attention of x ``(B, T, d)``: heads of d/n_heads, scale 1/sqrt(d/n_heads)."""
    check_tensor("x", x, min_dim=3)
    if x.dim() != 3:
        raise ValueError(f"x must be (B, T, d), got shape {tuple(x.shape)}")
    b, t, d = x.shape
    if isinstance(n_heads, bool) or not isinstance(n_heads, int) or n_heads < 1 or d % n_heads:
        raise ValueError(f"n_heads must be an int >= 1 dividing d={d}, got {n_heads!r}")
    n_kv = n_heads if n_kv_heads is None else n_kv_heads
    if isinstance(n_kv, bool) or not isinstance(n_kv, int) or n_kv < 1 or n_heads % n_kv:
        raise ValueError(f"n_kv_heads must be an int >= 1 dividing n_heads={n_heads}, got {n_kv_heads!r}")
    dh = d // n_heads
    for name, w, rows in (("w_q", w_q, d), ("w_k", w_k, n_kv * dh), ("w_v", w_v, n_kv * dh), ("w_o", w_o, d)):
        check_tensor(name, w)
        if tuple(w.shape) != (rows, d):
            raise ValueError(f"{name}.shape={tuple(w.shape)}, expected {(rows, d)}")
        if w.dtype != x.dtype:
            raise ValueError(f"{name}.dtype={w.dtype} differs from x.dtype={x.dtype}")
    q = (x @ w_q.T).view(b, t, n_heads, dh).transpose(1, 2)  # (B, H, T, Dh)
    k = (x @ w_k.T).view(b, t, n_kv, dh).transpose(1, 2)  # (B, Hkv, T, Dh)
    v = (x @ w_v.T).view(b, t, n_kv, dh).transpose(1, 2)  # (B, Hkv, T, Dh)
    group = n_heads // n_kv
    k = k.repeat_interleave(group, dim=1)  # (B, H, T, Dh): query head h reads kv head h // group
    v = v.repeat_interleave(group, dim=1)  # (B, H, T, Dh)
    heads = scaled_dot_product(q, k, v, causal=causal)  # (B, H, T, Dh), scale 1/sqrt(Dh)
    concat = heads.transpose(1, 2).reshape(b, t, d)  # (B, T, H * Dh): heads side by side
    return concat @ w_o.T  # (B, T, d)
