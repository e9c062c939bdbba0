"""attention from torch's own attention: ``torch.nn.functional.scaled_dot_product_attention`` (SDPA).

What SDPA does differently from the contract, and how this module bridges it:

- a query row that may see no key: depending on the backend SDPA returns NaN or 0 for it, and its
  gradient may be NaN. Here such rows are unmasked before SDPA and zeroed after it (``torch.where``),
  so they are 0 with gradient 0;
- masked keys holding NaN or inf: SDPA adds the mask as -inf to the scores, and NaN + (-inf) is NaN, so
  a NaN in a masked key still poisons the output. Keys and values that no query may see are zeroed first;
- ``causal`` together with a mask: SDPA refuses ``is_causal=True`` with ``attn_mask``; the two are
  combined into one boolean mask (``torch.ones(Tq, Tk).tril()``, top-left aligned like ``is_causal``);
- SDPA does not return the weights: with ``return_weights=True`` they are computed with ``torch.softmax``;
- grouped-query attention: SDPA's ``enable_gqa=True`` (it repeats kv heads with ``repeat_interleave``,
  the contract's order);
- SDPA raises ``RuntimeError`` on mismatched shapes; the contract wants ``ValueError`` naming the
  argument, so shapes are checked first.

Masks are built from ``torch.ones(T, T).tril/triu`` and index arithmetic; BigBird's random blocks are drawn
with ``torch.multinomial`` (another draw than the reference's: the suite checks the pattern's properties,
not one particular draw).

Left out (missing): ``sparse``, because torch's native block-sparse attention (``flex_attention`` with
a ``BlockMask``) materializes the full (T, T) score matrix in eager mode on CPU and so fails the O(T·W)
memory requirement unless compiled; ``linear`` and ``performer``, which torch has no native for.
``linformer`` is SDPA on the projected keys and values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _check(q, k, v):
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(x).__name__}")
        if x.dim() < 2 or x.shape[:-2] != q.shape[:-2] or x.dtype != q.dtype:
            raise ValueError(f"{name}: shape {tuple(x.shape)} / dtype {x.dtype} do not match q {tuple(q.shape)} / {q.dtype}")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k.shape={tuple(k.shape)}: head dim differs from q's {q.shape[-1]}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"v.shape={tuple(v.shape)}: not one value per key of k {tuple(k.shape)}")


def _allowed(mask, causal, q, k):
    tq, tk = q.shape[-2], k.shape[-2]
    full = (*q.shape[:-2], tq, tk)
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise TypeError("mask must be a bool tensor (True = may attend)")
        try:
            ok = torch.broadcast_shapes(mask.shape, full) == torch.Size(full)
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"mask.shape={tuple(mask.shape)} does not broadcast to {full}")
    if causal:
        lower = torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril()
        mask = lower if mask is None else mask & lower
    return None if mask is None else mask.expand(full)


def scaled_dot_product(q, k, v, mask=None, causal=False, scale=None, return_weights=False):
    _check(q, k, v)
    allowed = _allowed(mask, causal, q, k)
    if allowed is None:
        out = F.scaled_dot_product_attention(q, k, v, scale=scale)
        if not return_weights:
            return out
        allowed = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool, device=q.device).expand(*q.shape[:-1], k.shape[-2])
    seen = allowed.any(dim=-2, keepdim=True).transpose(-2, -1)  # (..., Tk, 1): some query may see the key
    k, v = torch.where(seen, k, 0.0), torch.where(seen, v, 0.0)
    rows = allowed.any(dim=-1, keepdim=True)  # (..., Tq, 1)
    safe = allowed | ~rows  # an empty row sees everything, then is zeroed
    out = torch.where(rows, F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=scale), 0.0)
    if not return_weights:
        return out
    s = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1) * s).masked_fill(~safe, float("-inf"))
    return out, torch.where(rows, torch.softmax(scores, dim=-1), 0.0)


def multi_head(x, w_q, w_k, w_v, w_o, n_heads, causal=False, n_kv_heads=None):
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"x must be a (B, T, d) tensor, got {getattr(x, 'shape', x)}")
    b, t, d = x.shape
    n_kv = n_heads if n_kv_heads is None else n_kv_heads
    if not isinstance(n_heads, int) or n_heads < 1 or d % n_heads:
        raise ValueError(f"n_heads={n_heads!r} must divide d={d}")
    if not isinstance(n_kv, int) or n_kv < 1 or n_heads % n_kv:
        raise ValueError(f"n_kv_heads={n_kv_heads!r} must divide n_heads={n_heads}")
    dh = d // n_heads
    for name, w, rows in (("w_q", w_q, d), ("w_k", w_k, n_kv * dh), ("w_v", w_v, n_kv * dh), ("w_o", w_o, d)):
        if tuple(w.shape) != (rows, d):
            raise ValueError(f"{name}.shape={tuple(w.shape)}, expected {(rows, d)}")
    q = F.linear(x, w_q).view(b, t, n_heads, dh).transpose(1, 2)  # (B, H, T, Dh)
    k = F.linear(x, w_k).view(b, t, n_kv, dh).transpose(1, 2)  # (B, Hkv, T, Dh)
    v = F.linear(x, w_v).view(b, t, n_kv, dh).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=n_kv != n_heads)  # (B, H, T, Dh)
    return F.linear(out.transpose(1, 2).reshape(b, t, d), w_o)


def _size(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def sliding_window_mask(T, window, causal=False):
    _size("T", T, 1)
    _size("window", window, 1)
    ones = torch.ones(T, T, dtype=torch.bool)
    return ones.tril().triu(-(window - 1)) if causal else ones.tril(window - 1).triu(-(window - 1))


def longformer_mask(T, window, global_idx):
    m = sliding_window_mask(T, window)
    idx = torch.as_tensor(list(global_idx), dtype=torch.long)
    if idx.numel() and (idx.min() < 0 or idx.max() >= T):
        raise ValueError(f"global_idx {idx.tolist()} outside [0, T={T})")
    m[idx, :] = True
    m[:, idx] = True
    return m


def strided_mask(T, stride):
    _size("T", T, 1)
    _size("stride", stride, 1)
    diff = torch.arange(T)[:, None] - torch.arange(T)[None, :]
    return torch.ones(T, T, dtype=torch.bool).tril() & ((diff < stride) | (torch.remainder(diff, stride) == 0))


def fixed_mask(T, stride, c):
    _size("T", T, 1)
    _size("stride", stride, 1)
    _size("c", c, 0)
    if c > stride:
        raise ValueError(f"c={c} must be <= stride={stride}")
    block = torch.arange(T) // stride
    summary = (torch.arange(T) % stride >= stride - c)[None, :]
    return torch.ones(T, T, dtype=torch.bool).tril() & ((block[:, None] == block[None, :]) | summary)


def bigbird_mask(T, block, n_random, n_window, n_global, seed):
    for name, value, minimum in (("T", T, 1), ("block", block, 1), ("n_random", n_random, 0),
                                 ("n_window", n_window, 0), ("n_global", n_global, 0), ("seed", seed, 0)):
        _size(name, value, minimum)
    if n_window % 2 == 0 and n_window:
        raise ValueError(f"n_window must be odd or 0, got {n_window}")
    nb = -(-T // block)
    if n_global > nb:
        raise ValueError(f"n_global={n_global} exceeds the {nb} blocks")
    ones = torch.ones(nb, nb, dtype=torch.bool)
    blocks = ones.tril(n_window // 2).triu(-(n_window // 2)) if n_window else torch.zeros(nb, nb, dtype=torch.bool)
    blocks[:n_global, :] = True
    blocks[:, :n_global] = True
    gen = torch.Generator().manual_seed(seed)
    for i in range(n_global, nb):
        free = ~blocks[i]
        n = min(n_random, int(free.sum()))
        if n:
            blocks[i, torch.multinomial(free.double(), n, replacement=False, generator=gen)] = True
    tokens = blocks.repeat_interleave(block, 0).repeat_interleave(block, 1)  # (nb*block, nb*block)
    return tokens[:T, :T].contiguous()


def linformer(q, k, v, e, f):
    _check(q, k, v)
    t = k.shape[-2]
    for name, p in (("e", e), ("f", f)):
        if not isinstance(p, torch.Tensor) or p.dim() != 2 or p.shape[1] != t or p.dtype != q.dtype:
            raise ValueError(f"{name} must be a (k, T={t}) tensor of q's dtype, got {getattr(p, 'shape', p)}")
    if e.shape[0] != f.shape[0]:
        raise ValueError(f"f.shape={tuple(f.shape)} must have as many rows as e.shape={tuple(e.shape)}")
    return F.scaled_dot_product_attention(q, e @ k, f @ v)
