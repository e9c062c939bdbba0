"""Sparse attention at GPU speed: each pattern of ``masks.py`` as a FlexAttention ``BlockMask``.

FlexAttention (``torch.nn.attention.flex_attention``, Dong et al., 2024) runs one fused, tiled kernel over
the (T, T) grid cut into tiles of 128 x 128 and skips every tile the mask leaves empty. It needs two things:

- a ``mask_mod(b, h, q_idx, kv_idx) -> bool``: the pattern's definition, evaluated inside the kernel for
  the tiles the mask only partly covers. Here it is the table of ``masks.py`` written with index tensors:

  ================  ==========================================================================
  sliding_window    |i - j| < window                       (causal: 0 <= i - j < window)
  longformer        |i - j| < window  or  g[i]  or  g[j]    (g: the global positions, a (T,) bool)
  bigbird           layout[i // block, j // block]         (layout: the (nb, nb) block pattern of
                                                            ``masks.bigbird_layout``, the same draw)
  strided           j <= i  and  (i - j < stride  or  (i - j) % stride == 0)
  fixed             j <= i  and  (j // stride == i // stride  or  j % stride >= stride - c)
  ================  ==========================================================================

- the tiles: for every row tile, the column tiles with at least one True (``kv_num_blocks``,
  ``kv_indices``), and among them those entirely True (``full_kv_*``: the kernel skips the mask_mod
  there). :func:`block_mask` evaluates the mask_mod on slabs of 128 query rows, ``(128, T)`` at a time,
  so building it never holds a (T, T) tensor, and caches it per (pattern, T, arguments, device).

Worked example: ``sliding_window``, T = 512, window = 256: 4 x 4 tiles of 128. Row tile 0 (queries
0..127) against column tile 1 (keys 128..255): |i - j| <= 255 < 256 everywhere, a full tile; against
tile 2 (keys 256..383): |i - j| runs from 129 to 383, a partial tile; against tile 3 (keys 384..511):
|i - j| >= 257, skipped. So row tile 0 lists full tiles [0, 1] and partial tiles [2].

**Where the reference uses it.** ``efficient.sparse`` stays the readable oracle (the gather over index
tables) and takes this path only where it pays and is supported (:func:`use_flex`): inputs on CUDA, T >=
``FLEX_MIN_T`` (1024: below it the one-off compilation per pattern outweighs any gain), float16, bfloat16
or float32, and a head dimension D = Dv that is a power of two in [16, 256]. The call is
``torch.compile(flex_attention)`` with this block mask and scale 1/sqrt(D); gradients flow to q, k and v
through FlexAttention's fused backward (the mask has none). Results equal the gather's to rounding: each
query's softmax runs over exactly the keys its pattern lists (``suites/test_attention_fast.py``).

On the CPU, FlexAttention has a compiled forward and an eager one (which materializes the (T, T) scores)
but no backward in torch 2.13: the reference keeps the gather there. :func:`block_mask` works on any
device, so the masks and tiles can be checked without a GPU.

Compilation (:func:`attend`, settings changed for its own calls only and restored after): dynamo keeps at
most ``recompile_limit`` (8) compiled versions of one function and falls back to eager, (T, T)-materializing
FlexAttention beyond that; five patterns, a few dtypes, grad modes and shapes exceed 8, so the limit is
raised to 64. Kernels are compiled in this process (inductor's ``compile_threads = 1``) and the backward
with the forward (``force_non_lazy_backward_lowering``), not later in a pool of compile workers: such a
pool outlives the call, and a test harness that stops the processes a call leaves behind would break it.
"""

from __future__ import annotations

import functools
import math

import torch

from fmspec.reference.attention import masks

BLOCK = 128  # FlexAttention's tile, rows and columns
FLEX_MIN_T = 1024  # sparse() uses FlexAttention from this sequence length on (CUDA only)
FLEX_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
RECOMPILE_LIMIT = 64  # compiled versions of attend() kept (patterns x dtypes x grad modes x shapes)
SLAB_ELEMENTS = 1 << 24  # mask entries evaluated at once while building a block mask


# ------------------------------------------------------------------------------------ masks as mask_mods
def _round_up(t: int, multiple: int) -> int:
    return -(-t // multiple) * multiple


def sliding_window_mod(T: int, window: int, causal: bool = False, device=None):
    masks.sliding_window_mask(1, window, causal)  # validate the arguments alike

    def mod(b, h, q_idx, kv_idx):
        diff = q_idx - kv_idx
        return (diff >= 0) & (diff < window) if causal else diff.abs() < window
    return mod


def longformer_mod(T: int, window: int, global_idx, device=None):
    masks.check_int("window", window, 1)
    glob = masks.check_global_idx(global_idx, T)
    # (T padded,): the kernel may read positions past T in the last, partial tile
    g = torch.zeros(_round_up(T, BLOCK), dtype=torch.bool)
    g[glob] = True
    g = g.to(device)

    def mod(b, h, q_idx, kv_idx):
        return ((q_idx - kv_idx).abs() < window) | g[q_idx] | g[kv_idx]
    return mod


def bigbird_mod(T: int, block: int, n_random: int, n_window: int, n_global: int, seed: int, device=None):
    n_blocks = masks.check_bigbird(T, block, n_random, n_window, n_global, seed)
    rows = masks.bigbird_layout(n_blocks, n_random, n_window, n_global, seed)  # the same draw as bigbird_mask
    padded = _round_up(_round_up(T, BLOCK), block) // block  # blocks of the padded length
    layout = torch.zeros(padded, padded, dtype=torch.bool)  # (nb padded, nb padded)
    for i, keys in enumerate(rows):
        layout[i, keys] = True
    layout = layout.to(device)

    def mod(b, h, q_idx, kv_idx):
        return layout[q_idx // block, kv_idx // block]
    return mod


def strided_mod(T: int, stride: int, device=None):
    masks.check_int("stride", stride, 1)

    def mod(b, h, q_idx, kv_idx):
        diff = q_idx - kv_idx
        return (diff >= 0) & ((diff < stride) | (diff % stride == 0))
    return mod


def fixed_mod(T: int, stride: int, c: int, device=None):
    masks.check_int("stride", stride, 1)
    masks.check_int("c", c, 0)
    if c > stride:
        raise ValueError(f"c must be <= stride={stride}, got {c}")

    def mod(b, h, q_idx, kv_idx):
        return (kv_idx <= q_idx) & ((kv_idx // stride == q_idx // stride) | (kv_idx % stride >= stride - c))
    return mod


MASK_MODS = {
    "sliding_window": sliding_window_mod,
    "longformer": longformer_mod,
    "bigbird": bigbird_mod,
    "strided": strided_mod,
    "fixed": fixed_mod,
}


def mask_mod(pattern: str, T: int, device=None, **pattern_args):
    """The pattern's ``mask_mod(b, h, q_idx, kv_idx) -> bool``; arguments checked as ``<pattern>_mask`` does."""
    if pattern not in MASK_MODS:
        raise ValueError(f"pattern must be one of {', '.join(MASK_MODS)}, got {pattern!r}")
    masks.check_int("T", T, 1)
    return MASK_MODS[pattern](T, device=device, **pattern_args)


# ------------------------------------------------------------------------------------------ block masks
def tiles(mod, T: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(partial, full), each (nb, nb) bool over tiles of BLOCK x BLOCK: some / every entry of the tile True.

    Positions past T count as False, so the last, partial tile is never full (the kernel masks it itself).
    """
    nb = _round_up(T, BLOCK) // BLOCK
    kv = torch.arange(nb * BLOCK, device=device)  # (Tp,)
    rows_per_slab = max(1, SLAB_ELEMENTS // (BLOCK * nb * BLOCK))  # row tiles evaluated at once
    partial, full = [], []
    for first in range(0, nb, rows_per_slab):
        q = torch.arange(first * BLOCK, min(first + rows_per_slab, nb) * BLOCK, device=device)  # (R·BLOCK,)
        m = torch.as_tensor(mod(0, 0, q[:, None], kv[None, :]), dtype=torch.bool)  # (R·BLOCK, Tp)
        m = m & (q[:, None] < T) & (kv[None, :] < T)
        count = m.reshape(-1, BLOCK, nb, BLOCK).sum(dim=(1, 3))  # (R, nb): True entries per tile
        partial.append((count > 0) & (count < BLOCK * BLOCK))
        full.append(count == BLOCK * BLOCK)
    return torch.cat(partial), torch.cat(full)  # (nb, nb) each


def _ordered(blocks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row tile, the number of listed column tiles and their indices, listed ones first, ascending."""
    num = blocks.sum(dim=-1).to(torch.int32)  # (nb,)
    idx = torch.argsort((~blocks).to(torch.int8), dim=-1, stable=True).to(torch.int32)  # (nb, nb)
    return num[None, None], idx[None, None]  # (1, 1, nb), (1, 1, nb, nb): broadcast over B and H


def block_mask(pattern: str, T: int, device="cpu", **pattern_args):
    """The pattern over (T, T) as a FlexAttention ``BlockMask`` (B and H broadcast), cached."""
    if isinstance(pattern_args.get("global_idx"), torch.Tensor):
        pattern_args["global_idx"] = pattern_args["global_idx"].tolist()
    key = tuple(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in pattern_args.items()))
    return _block_mask(pattern, T, str(torch.device(device)), key)  # bad arguments raise on the cache miss


@functools.lru_cache(maxsize=64)
def _block_mask(pattern: str, T: int, device: str, key: tuple):
    from torch.nn.attention.flex_attention import BlockMask

    args = {k: list(v) if k == "global_idx" else v for k, v in key}
    mod = mask_mod(pattern, T, device, **args)
    partial, full = tiles(mod, T, device)
    kv_num, kv_idx = _ordered(partial)
    full_num, full_idx = _ordered(full)
    return BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=BLOCK, mask_mod=mod,
                                    seq_lengths=(T, T))


# ------------------------------------------------------------------------------------------- attention
def use_flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether ``efficient.sparse`` takes this path (see the module docstring)."""
    d, dv = q.shape[-1], v.shape[-1]
    return (q.is_cuda and q.shape[-2] >= FLEX_MIN_T and q.dtype in FLEX_DTYPES and d == dv
            and 16 <= d <= 256 and d & (d - 1) == 0)


def _flex(q, k, v, block_mask, scale):
    from torch.nn.attention.flex_attention import flex_attention

    return flex_attention(q, k, v, block_mask=block_mask, scale=scale)


@functools.lru_cache(maxsize=None)
def _compiled():
    return torch.compile(_flex)


_COMPILED: dict = {}  # key -> its block mask, held so that its id is never reused (see attend)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask, scale: float, key=None) -> torch.Tensor:
    """Compiled FlexAttention, (B, H, T, D) in and out (settings of the compiler: the module docstring).

    ``key`` names what the compiled code depends on (the block mask, shapes, dtype, grad mode): the compiler
    settings are patched around the first call of a key only, where compilation happens; later calls go
    straight to the compiled code (patching costs more than the kernel at these sizes)."""
    if key is not None and key in _COMPILED:
        return _compiled()(q, k, v, block_mask, scale)
    # private config modules: torch has no public setting for the recompile limit or the backward lowering,
    # and these patches are scoped to the compiling call (torch.compile's options= reaches inductor only)
    import torch._dynamo.config as dynamo_config
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    limit = "recompile_limit" if hasattr(dynamo_config, "recompile_limit") else "cache_size_limit"  # torch < 2.6
    with dynamo_config.patch(**{limit: RECOMPILE_LIMIT}), inductor_config.patch(compile_threads=1), \
            functorch_config.patch(force_non_lazy_backward_lowering=True):
        out = _compiled()(q, k, v, block_mask, scale)
    if key is not None:
        if len(_COMPILED) >= RECOMPILE_LIMIT:  # bounded: a forgotten key only means patching again, never a wrong result
            _COMPILED.clear()
        _COMPILED[key] = block_mask
    return out


def sparse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pattern: str, **pattern_args) -> torch.Tensor:
    """Self-attention under ``<pattern>_mask(T, **pattern_args)`` through compiled FlexAttention; scale 1/sqrt(D)."""
    t, d = q.shape[-2], q.shape[-1]
    bm = block_mask(pattern, t, q.device, **pattern_args)
    grad = torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v))
    key = (id(bm), tuple(q.shape), tuple(k.shape), q.dtype, str(q.device), grad)
    return attend(q, k, v, bm, 1.0 / math.sqrt(d), key)
