"""Sparse attention patterns as boolean masks (lecture 001 "X-formers", exercise 000 "Sparse Attention",
"Longformer"). Every mask is a ``(T, T)`` bool tensor, True = query i (row) may attend to key j (column).

sliding window    |i - j| < window;  causal: 0 <= i - j < window          (window keys per row at most)
Longformer        sliding window | global rows | global columns (Beltagy et al., 2020): a global token
                  sees every key and every query sees it
Sparse Transformer (Child et al., 2019), causal, with stride l:
  strided         j <= i and (i - j < l or (i - j) mod l == 0)   (the local head and the strided head)
  fixed           j <= i and (j // l == i // l or j mod l >= l - c)  (own block, and the last c columns
                  of every block as "summary" keys)
BigBird           (Zaheer et al., 2020) on blocks of ``block`` tokens, nb = ceil(T / block) blocks:
                  global: the first n_global blocks are full rows and full columns;
                  window: block i sees blocks j with |i - j| <= n_window // 2 (n_window odd, or 0 for none);
                  random: every non-global row block sees n_random more blocks, drawn without replacement,
                  uniformly from the whole sequence minus its window and the global blocks (past and
                  future alike), from ``torch.Generator().manual_seed(seed)``; fewer if fewer are left.

Worked example, the BigBird figure of lecture 001 (r = 2, w = 3, g = 2), read as an 8 x 8 grid of single
tokens (block = 1): (a) ``bigbird_mask(8, 1, 2, 0, 0, s)`` has exactly 2 keys per row; (b)
``bigbird_mask(8, 1, 0, 3, 0, s)`` is the band |i - j| <= 1; (c) ``bigbird_mask(8, 1, 0, 0, 2, s)`` is rows
0, 1 and columns 0, 1; (d) ``bigbird_mask(8, 1, 2, 3, 2, s)`` is (b) | (c) plus 2 random keys in each of
rows 2..7, outside the band and the global columns.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch


# ------------------------------------------------------------------------------------------ validation
def check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_global_idx(global_idx: Sequence[int], t: int) -> list[int]:
    if isinstance(global_idx, torch.Tensor):
        global_idx = global_idx.tolist()
    try:
        idx = sorted(set(global_idx))
    except TypeError:
        raise TypeError(f"global_idx must be a sequence of ints, got {global_idx!r}") from None
    for g in idx:
        if isinstance(g, bool) or not isinstance(g, int):
            raise TypeError(f"global_idx must hold ints, got {g!r}")
        if not 0 <= g < t:
            raise ValueError(f"global_idx holds {g}, outside [0, T={t})")
    return idx


def check_bigbird(t: int, block: int, n_random: int, n_window: int, n_global: int, seed: int) -> int:
    """Validate BigBird's arguments; the number of blocks."""
    check_int("T", t, 1)
    check_int("block", block, 1)
    check_int("n_random", n_random, 0)
    check_int("n_window", n_window, 0)
    check_int("seed", seed, 0)
    if n_window % 2 == 0 and n_window != 0:
        raise ValueError(f"n_window must be odd (a block and (n_window - 1) / 2 on each side) or 0, got {n_window}")
    n_blocks = math.ceil(t / block)
    check_int("n_global", n_global, 0)
    if n_global > n_blocks:
        raise ValueError(f"n_global={n_global} exceeds the {n_blocks} blocks of T={t} with block={block}")
    return n_blocks


# --------------------------------------------------------------------------------------------- helpers
def positions(t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Query index i as a column (T, 1) and key index j as a row (1, T)."""
    r = torch.arange(t)
    return r[:, None], r[None, :]


def bigbird_layout(n_blocks: int, n_random: int, n_window: int, n_global: int, seed: int) -> list[list[int]]:
    """Key blocks of every row block, sorted; a global row block lists every block.

    ``bigbird_layout(4, 1, 1, 1, s)``: block 0 is global -> [0, 1, 2, 3]; block 1 sees itself, global
    block 0 and one random block out of {2, 3}.
    """
    gen = torch.Generator().manual_seed(seed)
    half = n_window // 2
    glob = set(range(n_global))
    rows = []
    for i in range(n_blocks):
        if i in glob:
            rows.append(list(range(n_blocks)))
            continue
        window = set(range(max(0, i - half), min(n_blocks, i + half + 1))) if n_window else set()
        fixed = window | glob
        rest = [j for j in range(n_blocks) if j not in fixed]  # the whole sequence, past and future
        pick = torch.randperm(len(rest), generator=gen)[:n_random].tolist()
        rows.append(sorted(fixed | {rest[p] for p in pick}))
    return rows


# --------------------------------------------------------------------------------------------- contract
def sliding_window_mask(T: int, window: int, causal: bool = False) -> torch.Tensor:
    """Row i sees j with |i - j| < window (causal: 0 <= i - j < window). ``(T, T)`` bool."""
    check_int("T", T, 1)
    check_int("window", window, 1)
    i, j = positions(T)
    diff = i - j  # (T, T)
    if causal:
        return (diff >= 0) & (diff < window)
    return diff.abs() < window


def longformer_mask(T: int, window: int, global_idx: Sequence[int]) -> torch.Tensor:
    """Sliding window (|i - j| < window), plus full rows and full columns at ``global_idx``."""
    check_int("T", T, 1)
    check_int("window", window, 1)
    idx = check_global_idx(global_idx, T)
    is_global = torch.zeros(T, dtype=torch.bool)
    is_global[idx] = True  # (T,)
    return sliding_window_mask(T, window) | is_global[:, None] | is_global[None, :]


def bigbird_mask(T: int, block: int, n_random: int, n_window: int, n_global: int, seed: int) -> torch.Tensor:
    """BigBird's blocked pattern: random + window + global blocks (see the module docstring)."""
    n_blocks = check_bigbird(T, block, n_random, n_window, n_global, seed)
    blocks = torch.zeros(n_blocks, n_blocks, dtype=torch.bool)  # (nb, nb)
    for i, keys in enumerate(bigbird_layout(n_blocks, n_random, n_window, n_global, seed)):
        blocks[i, keys] = True
    tokens = blocks.repeat_interleave(block, dim=0).repeat_interleave(block, dim=1)  # (nb*block, nb*block)
    return tokens[:T, :T].clone()  # (T, T): the last block may be partial


def strided_mask(T: int, stride: int) -> torch.Tensor:
    """Sparse Transformer strided pattern (causal): j <= i and (i - j < stride or (i - j) % stride == 0)."""
    check_int("T", T, 1)
    check_int("stride", stride, 1)
    i, j = positions(T)
    diff = i - j  # (T, T)
    return (diff >= 0) & ((diff < stride) | (diff % stride == 0))


def fixed_mask(T: int, stride: int, c: int) -> torch.Tensor:
    """Sparse Transformer fixed pattern (causal): j <= i and (same block of stride, or j % stride >= stride - c)."""
    check_int("T", T, 1)
    check_int("stride", stride, 1)
    check_int("c", c, 0)
    if c > stride:
        raise ValueError(f"c must be <= stride={stride}, got {c}")
    i, j = positions(T)
    same_block = (i // stride) == (j // stride)  # (T, T)
    summary = (j % stride) >= stride - c  # (1, T)
    return (j <= i) & (same_block | summary)
