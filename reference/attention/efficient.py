"""Efficient sparse attention: each pattern of ``masks.py`` computed in O(T · W) memory, never O(T^2).

Instead of a (T, T) score matrix, every query row lists the keys its pattern lets it see, as an index
table ``idx`` of shape (T, W) with a validity flag (rows shorter than W are padded). The keys and values
are gathered into (B, H, T, W, D), the scores are (B, H, T, W), and the softmax runs over the W listed
keys: the result equals ``scaled_dot_product(q, k, v, mask=<pattern>_mask(T, ...))``. The tables are
built by index arithmetic, never from a (T, T) mask.

Row width W of each pattern (keys listed per query):

sliding window   2·window - 1 (causal: window)
Longformer       2·window - 1 + G for ordinary rows; the G global rows see all T keys and are computed
                 as G dense rows, (G, T)
BigBird          block · (n_window + n_global + n_random); the global row blocks as dense rows
strided          stride + (T - 1) // stride    (O(T·sqrt T) with stride ~ sqrt T, as in Child et al.)
fixed            stride + c · ceil(T / stride)

Memory is O(T · W · D) for the gathered keys and values, O(T · W) for scores and tables.

This gather is the oracle, readable and exact, but slow on a GPU (many small gathers; 132 ms for a sliding
window of 256 at T = 8192 on an H200 where FlexAttention takes 0.23 ms). On CUDA, from T = 1024 on, in
float16, bfloat16 or float32 with D = Dv a power of two in [16, 256] (``flex.use_flex``), ``sparse`` runs
the same mask as a compiled FlexAttention ``BlockMask`` instead (``flex.py``): same values to rounding,
gradients through FlexAttention's backward, O(T · D) memory.
"""

from __future__ import annotations

import torch

from fmspec.reference.attention import flex, masks
from fmspec.reference.attention.dense import check_qkv, masked_softmax, scaled_dot_product

Table = tuple[torch.Tensor, torch.Tensor, list[int]]  # idx (T, W), valid (T, W), dense rows


def sliding_window_table(T: int, window: int, causal: bool = False) -> Table:
    """Row i lists keys i - window + 1 .. i (+ window - 1 unless causal)."""
    masks.sliding_window_mask(1, window, causal)  # validate the arguments alike
    last = 0 if causal else window - 1
    offsets = torch.arange(-(window - 1), last + 1)  # (W,)
    idx = torch.arange(T)[:, None] + offsets[None, :]  # (T, W)
    valid = (idx >= 0) & (idx < T)
    return idx.clamp(0, T - 1), valid, []


def longformer_table(T: int, window: int, global_idx) -> Table:
    """Window keys, then the global keys not already in the window; global rows go dense."""
    masks.check_int("window", window, 1)
    glob = masks.check_global_idx(global_idx, T)
    idx, valid, _ = sliding_window_table(T, window)  # (T, 2w - 1)
    g = torch.tensor(glob, dtype=torch.long)  # (G,)
    g_idx = g[None, :].expand(T, len(glob))  # (T, G)
    g_valid = (torch.arange(T)[:, None] - g[None, :]).abs() >= window  # not already in the window
    return torch.cat([idx, g_idx], dim=1), torch.cat([valid, g_valid], dim=1), glob


def bigbird_table(T: int, block: int, n_random: int, n_window: int, n_global: int, seed: int) -> Table:
    """Each row block's key blocks (the same layout as ``bigbird_mask``), expanded to tokens."""
    n_blocks = masks.check_bigbird(T, block, n_random, n_window, n_global, seed)
    layout = masks.bigbird_layout(n_blocks, n_random, n_window, n_global, seed)
    ordinary = [row for i, row in enumerate(layout) if i >= n_global]
    width = max((len(row) for row in ordinary), default=0)
    key_blocks = torch.zeros(n_blocks, max(width, 1), dtype=torch.long)  # (nb, Wb)
    block_valid = torch.zeros(n_blocks, max(width, 1), dtype=torch.bool)  # (nb, Wb)
    for i, row in enumerate(layout):
        if i >= n_global:
            key_blocks[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            block_valid[i, : len(row)] = True
    tokens = key_blocks[:, :, None] * block + torch.arange(block)  # (nb, Wb, block)
    tok_valid = block_valid[:, :, None] & (tokens < T)  # (nb, Wb, block): the last block may be partial
    tokens = tokens.reshape(n_blocks, -1).clamp(max=T - 1)  # (nb, Wb * block)
    tok_valid = tok_valid.reshape(n_blocks, -1)  # (nb, Wb * block)
    row_block = torch.arange(T) // block  # (T,)
    dense_rows = list(range(min(n_global * block, T)))
    return tokens[row_block], tok_valid[row_block], dense_rows  # (T, Wb * block) each


def strided_table(T: int, stride: int) -> Table:
    """Row i lists i, i-1, .., i-stride+1 (local), then i-stride, i-2·stride, .. (strided)."""
    masks.check_int("stride", stride, 1)
    offsets = torch.cat([torch.arange(stride), stride * torch.arange(1, (T - 1) // stride + 1)])  # (W,)
    idx = torch.arange(T)[:, None] - offsets[None, :]  # (T, W)
    valid = idx >= 0
    return idx.clamp(min=0), valid, []


def fixed_table(T: int, stride: int, c: int) -> Table:
    """Row i lists its own block up to i, then the last c columns of every earlier block."""
    masks.check_int("stride", stride, 1)
    masks.check_int("c", c, 0)
    if c > stride:
        raise ValueError(f"c must be <= stride={stride}, got {c}")
    i = torch.arange(T)[:, None]  # (T, 1)
    own = (i // stride) * stride + torch.arange(stride)[None, :]  # (T, stride)
    own_valid = own <= i
    n_blocks = -(-T // stride)
    cols = (torch.arange(n_blocks)[:, None] * stride + torch.arange(stride - c, stride)[None, :]).reshape(-1)  # (nb*c,)
    summary = cols[None, :].expand(T, cols.numel())  # (T, nb * c)
    summary_valid = (cols[None, :] // stride) < (i // stride)  # earlier blocks only (own block is listed)
    idx = torch.cat([own, summary], dim=1)  # (T, stride + nb * c)
    valid = torch.cat([own_valid, summary_valid], dim=1)
    return idx.clamp(max=T - 1), valid, []


TABLES = {
    "sliding_window": sliding_window_table,
    "longformer": longformer_table,
    "bigbird": bigbird_table,
    "strided": strided_table,
    "fixed": fixed_table,
}


def gathered_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, idx: torch.Tensor,
                       valid: torch.Tensor, scale: float) -> torch.Tensor:
    """Row i attends to keys idx[i, :] where valid[i, :]: O(T · W) scores, never (T, T)."""
    keep = valid[:, :, None]  # (T, W, 1)
    kg = torch.where(keep, k[..., idx, :], 0.0)  # (B, H, T, W, D): padded slots zeroed
    vg = torch.where(keep, v[..., idx, :], 0.0)  # (B, H, T, W, Dv)
    scores = (kg @ q.unsqueeze(-1)).squeeze(-1) * scale  # (B, H, T, W)
    weights = masked_softmax(scores, valid)  # (B, H, T, W)
    return (weights.unsqueeze(-2) @ vg).squeeze(-2)  # (B, H, T, Dv)


def sparse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pattern: str, **pattern_args) -> torch.Tensor:
    """Self-attention under ``<pattern>_mask(T, **pattern_args)``, in O(T · W) memory; scale 1/sqrt(D)."""
    check_qkv(q, k, v, same_length=True)
    if pattern not in TABLES:
        raise ValueError(f"pattern must be one of {', '.join(TABLES)}, got {pattern!r}")
    if flex.use_flex(q, k, v):  # the GPU speed path: FlexAttention with the same mask
        return flex.sparse(q, k, v, pattern, **pattern_args)
    t, d = q.shape[-2], q.shape[-1]
    idx, valid, dense_rows = TABLES[pattern](t, **pattern_args)
    idx, valid = idx.to(q.device), valid.to(q.device)
    scale = d ** -0.5
    out = gathered_attention(q, k, v, idx, valid, scale)  # (B, H, T, Dv)
    if dense_rows:  # global rows see every key: G dense rows, (B, H, G, T) scores
        rows = torch.tensor(dense_rows, dtype=torch.long, device=q.device)
        full = scaled_dot_product(q[..., rows, :], k, v, scale=scale)  # (B, H, G, Dv)
        out = out.index_copy(out.dim() - 2, rows, full)
    return out
