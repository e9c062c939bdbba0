"""Blockwise absmax int8 and NF4 in Triton: the speed reference of ``reference/quant.py`` on GPU.

Same arithmetic as ``reference/quant.py`` (read that first: it is the readable version and the oracle);
here speed rules. These kernels only move bytes: each element is read once and written once, so the
goal is the device's copy bandwidth, and every design choice serves that:

* one program per tile of ``ROWS`` consecutive blocks, ``ROWS · B`` contiguous elements (about 8k):
  big contiguous loads and stores, vectorised to 16 bytes where the block size allows, and enough
  bytes in flight per program to hide the memory latency;
* a tile is a ``(ROWS, B_P2)`` view of the flat input (``B_P2``: the block size rounded up to a power of
  two; the lanes past ``B`` are masked), so any block size works, and the per-block absmax is a row
  reduction in registers;
* whole tiles load without a bounds mask; only the last tile, which may end in a partial block, is masked;
* offsets are 64-bit: inputs of 2^31 elements and more are fine.

Bit-exact with the readable reference, by doing the same IEEE operations in the same order, in float32
(the reference computes in float32 for float16, bfloat16 and float32 inputs; float64 never comes here):

* absmax: a max of absolute values, exact in any order;
* ``c = 127 / absmax`` and ``scale = absmax / 127``: correctly rounded divisions (``div_rn``; Triton's
  plain ``/`` is an approximate division on NVIDIA GPUs), 0 → 1 for an all-zero block as in the reference;
* ``q = round(x · c)``: one rounded product, then round half to even (as ``torch.round``);
* dequantize ``q · scale`` and NF4 ``level · absmax``: one rounded float32 product, then one rounding to
  the output dtype, as ``.to(dtype)`` in the reference.

Shapes: flat, contiguous inputs of ``n`` elements in blocks of ``block_size`` (the last block may be
shorter); codes ``(n,)`` int8, scales ``(ceil(n / block_size),)`` in the input dtype.

CPU: ``interpret=True`` runs the same kernels in Triton's interpreter (numpy, slow: small sizes only) from
a private copy of this module built with the interpreter switched on, as ``reference/flash_triton.py`` does.
"""

from __future__ import annotations

import sys

import torch
import triton
import triton.language as tl

from fmspec.reference.flash_triton import _mode, interpreted_copy  # the interpreter machinery, shared with flash

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_BLOCK = 16384  # one block must fit in one program's registers
TILE = 8192  # elements per program (ROWS · B_P2): 16 KiB of bfloat16 in, 8 KiB of int8 out
NUM_WARPS = 8
NF4_LOOKUPS = ("table", "gather", "select")  # the level lookups of the NF4 dequantize kernel (_nf4_levels)
NF4_LOOKUP = "gather"  # what nf4_dequantize uses; benchmarks/quant_gpu.py --nf4-variants times each against the copy
# (H100, 64M elements, bf16: gather 88% of the copy bandwidth, table 58%, select 58%; benchmarks/gpu-components.md)
NF4_TILE, NF4_NUM_WARPS = TILE, NUM_WARPS  # nf4_dequantize's elements a program and warps (same benchmark)
ROUND_MAGIC = tl.constexpr(12582912.0)  # 1.5 · 2^23


# ------------------------------------------------------------------------------------------- tile access
@triton.jit
def _tile(pid, B: tl.constexpr, B_P2: tl.constexpr, ROWS: tl.constexpr):
    """Block ids (ROWS,), column ids (B_P2,) and element offsets (ROWS, B_P2) of program pid's tile."""
    rows = pid.to(tl.int64) * ROWS + tl.arange(0, ROWS)
    cols = tl.arange(0, B_P2)
    offs = rows[:, None] * B + cols[None, :]
    return rows, cols, offs


@triton.jit
def _load(ptr, offs, cols, n, full, B: tl.constexpr, B_P2: tl.constexpr):
    """ptr[offs] as float32; lanes past the block (cols >= B) or past the end (offs >= n) read 0."""
    if full:
        if B == B_P2:
            x = tl.load(ptr + offs)
        else:
            x = tl.load(ptr + offs, mask=cols[None, :] < B, other=0)
    else:
        x = tl.load(ptr + offs, mask=(cols[None, :] < B) & (offs < n), other=0)
    return x.to(tl.float32)


@triton.jit
def _store(ptr, offs, cols, n, value, full, B: tl.constexpr, B_P2: tl.constexpr):
    if full:
        if B == B_P2:
            tl.store(ptr + offs, value)
        else:
            tl.store(ptr + offs, value, mask=cols[None, :] < B)
    else:
        tl.store(ptr + offs, value, mask=(cols[None, :] < B) & (offs < n))


@triton.jit
def _narrow(v, dtype: tl.constexpr):
    """float32 -> dtype, rounded to nearest even. bfloat16 by integer arithmetic on the bits (as c10's
    round_to_nearest_even; finite values): Triton's interpreter converts to bfloat16 with a rounding of its own."""
    if dtype == tl.bfloat16:
        bits = v.to(tl.uint32, bitcast=True)
        bits = bits + 0x7FFF + ((bits >> 16) & 1)  # add half an ulp of bfloat16, ties to the even side
        return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    elif dtype == tl.float16:
        return v.to(tl.float16)
    else:
        return v


@triton.jit
def _max_combine(a, b):
    return tl.maximum(a, b)


@triton.jit
def _round_half_even(v):
    """round(v), ties to even, for |v| < 2^22: adding 1.5 · 2^23 leaves no bit below 1, so the hardware's
    round-to-nearest-even does the rounding (the subtraction is exact). Needs ``enable_fp_fusion=False``
    at launch (an FMA would skip the rounding of the product before it); libdevice's rint would do the
    same on GPU but has no interpreter implementation."""
    return (v + ROUND_MAGIC) - ROUND_MAGIC


# --------------------------------------------------------------------------------------------- kernels
@triton.jit
def _absmax_quantize_kernel(X, Q, S, n, n_blocks, B: tl.constexpr, B_P2: tl.constexpr, ROWS: tl.constexpr):
    """Blocks pid·ROWS .. pid·ROWS + ROWS of x: q = round(x · c), c = 127 / absmax, scale = absmax / 127."""
    pid = tl.program_id(0)
    rows, cols, offs = _tile(pid, B, B_P2, ROWS)
    full = (pid.to(tl.int64) + 1) * ROWS * B <= n  # every block of the tile complete: no bounds mask
    x = _load(X, offs, cols, n, full, B, B_P2)  # (ROWS, B_P2) float32
    absmax = tl.reduce(tl.abs(x), 1, _max_combine)  # (ROWS,)
    safe = tl.where(absmax > 0, absmax, 1.0)  # an all-zero block: c = 127, codes 0
    c = tl.math.div_rn(tl.full([ROWS], 127.0, tl.float32), safe)
    q = _round_half_even(x * c[:, None])  # |q| <= 127
    _store(Q, offs, cols, n, q.to(tl.int8), full, B, B_P2)
    scale = tl.math.div_rn(absmax, tl.full([ROWS], 127.0, tl.float32))
    tl.store(S + rows, _narrow(scale, S.dtype.element_ty), mask=rows < n_blocks)


@triton.jit
def _absmax_dequantize_kernel(Q, S, OUT, n, n_blocks, B: tl.constexpr, B_P2: tl.constexpr, ROWS: tl.constexpr):
    """out = q · scale(block), rounded once to the output dtype."""
    pid = tl.program_id(0)
    rows, cols, offs = _tile(pid, B, B_P2, ROWS)
    full = (pid.to(tl.int64) + 1) * ROWS * B <= n
    q = _load(Q, offs, cols, n, full, B, B_P2)
    scale = tl.load(S + rows, mask=rows < n_blocks, other=0).to(tl.float32)
    _store(OUT, offs, cols, n, _narrow(q * scale[:, None], OUT.dtype.element_ty), full, B, B_P2)


@triton.jit
def _nf4_levels(code, LEVELS, SIZE: tl.constexpr, LOOKUP: tl.constexpr):
    """levels[code], float32, for a tensor of SIZE codes in 0..15; three ways to look up 16 numbers:

    * ``"table"``: a gather from the 64-byte table in global memory (one load per code, served by L1);
      its pointers get a layout of their own, reached through shared memory from the codes' layout and back;
    * ``"gather"``: ``tl.gather`` from the 16 levels held as a tensor: the codes flattened to one
      dimension, the table staged once in shared memory, one shared load per code, the result in the codes'
      layout (no other layout change);
    * ``"select"``: a tree of 15 selects on the code's four bits (bit 0 picks within pairs, bit 3 the
      half), registers only, no memory access; 15 integer-pipe instructions per code.
    """
    if LOOKUP == "table":
        return tl.load(LEVELS + code)
    elif LOOKUP == "gather":
        table = tl.load(LEVELS + tl.arange(0, 16))  # (16,)
        flat = tl.reshape(code, [SIZE])  # (SIZE,)
        return tl.reshape(tl.gather(table, flat, 0), code.shape)
    else:
        b0, b1, b2, b3 = (code & 1) != 0, (code & 2) != 0, (code & 4) != 0, (code & 8) != 0
        p0 = tl.where(b0, tl.load(LEVELS + 1), tl.load(LEVELS + 0))  # levels 0, 1
        p1 = tl.where(b0, tl.load(LEVELS + 3), tl.load(LEVELS + 2))
        p2 = tl.where(b0, tl.load(LEVELS + 5), tl.load(LEVELS + 4))
        p3 = tl.where(b0, tl.load(LEVELS + 7), tl.load(LEVELS + 6))
        p4 = tl.where(b0, tl.load(LEVELS + 9), tl.load(LEVELS + 8))
        p5 = tl.where(b0, tl.load(LEVELS + 11), tl.load(LEVELS + 10))
        p6 = tl.where(b0, tl.load(LEVELS + 13), tl.load(LEVELS + 12))
        p7 = tl.where(b0, tl.load(LEVELS + 15), tl.load(LEVELS + 14))
        q0, q1 = tl.where(b1, p1, p0), tl.where(b1, p3, p2)  # levels 0..3, 4..7
        q2, q3 = tl.where(b1, p5, p4), tl.where(b1, p7, p6)  # levels 8..11, 12..15
        return tl.where(b3, tl.where(b2, q3, q2), tl.where(b2, q1, q0))


@triton.jit
def _nf4_dequantize_kernel(PACKED, ABSMAX, LEVELS, OUT, n, n_blocks, B: tl.constexpr, B_P2: tl.constexpr,
                           ROWS: tl.constexpr, LOOKUP: tl.constexpr):
    """out = levels[code] · absmax(block); element 2i is the high nibble of byte i, 2i+1 the low one."""
    pid = tl.program_id(0)
    rows, cols, offs = _tile(pid, B, B_P2, ROWS)
    full = (pid.to(tl.int64) + 1) * ROWS * B <= n
    if B == B_P2 and B % 2 == 0:
        # whole bytes: each block is B/2 bytes; load them once, split each into its two codes, interleave
        half = tl.arange(0, B_P2 // 2)
        byte_offs = rows[:, None] * (B // 2) + half[None, :]  # (ROWS, B/2)
        if full:
            byte = tl.load(PACKED + byte_offs)
        else:
            byte = tl.load(PACKED + byte_offs, mask=byte_offs * 2 < n, other=0)
        byte = byte.to(tl.int32)
        code = tl.reshape(tl.join(byte >> 4, byte & 0xF), [ROWS, B_P2])  # (ROWS, B): hi, lo, hi, lo, ...
    else:
        if full:
            if B == B_P2:
                byte = tl.load(PACKED + offs // 2)
            else:
                byte = tl.load(PACKED + offs // 2, mask=cols[None, :] < B, other=0)
        else:
            byte = tl.load(PACKED + offs // 2, mask=(cols[None, :] < B) & (offs < n), other=0)
        code = (byte.to(tl.int32) >> (4 - 4 * (offs % 2)).to(tl.int32)) & 0xF  # (ROWS, B_P2) in 0..15
    level = _nf4_levels(code, LEVELS, ROWS * B_P2, LOOKUP)  # (ROWS, B_P2) float32
    absmax = tl.load(ABSMAX + rows, mask=rows < n_blocks, other=0).to(tl.float32)
    _store(OUT, offs, cols, n, _narrow(level * absmax[:, None], OUT.dtype.element_ty), full, B, B_P2)


# ----------------------------------------------------------------------------------------- host wrappers
def _grid(n: int, block_size: int, tile: int = TILE) -> tuple[int, int, int]:
    """(B_P2, ROWS, programs) for n elements in blocks of block_size, about ``tile`` elements a program."""
    b_p2 = triton.next_power_of_2(block_size)
    rows = max(1, tile // b_p2)
    return b_p2, rows, triton.cdiv(triton.cdiv(n, block_size), rows)


def check_inputs(x: torch.Tensor, block_size: int) -> None:
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"x.dtype: the Triton kernels take float16, bfloat16 or float32, got {x.dtype}")
    if not 1 <= block_size <= MAX_BLOCK:
        raise ValueError(f"block_size={block_size}: the Triton kernels take 1 .. {MAX_BLOCK}")


def absmax_quantize(x: torch.Tensor, block_size: int, interpret: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q, scale)`` of the flattened ``x`` in blocks of ``block_size``: ``(n,)`` int8 and ``(n_blocks,)``."""
    check_inputs(x, block_size)
    x = x.reshape(-1).contiguous()  # (n,)
    n, n_blocks = x.numel(), triton.cdiv(x.numel(), block_size)
    q = torch.empty(n, dtype=torch.int8, device=x.device)
    scale = torch.empty(n_blocks, dtype=x.dtype, device=x.device)
    b_p2, rows, programs = _grid(n, block_size)
    with _mode(interpret):
        _kernels(interpret)._absmax_quantize_kernel[(programs,)](
            x, q, scale, n, n_blocks, B=block_size, B_P2=b_p2, ROWS=rows, num_warps=NUM_WARPS, enable_fp_fusion=False)
    return q, scale


def absmax_dequantize(q: torch.Tensor, scale: torch.Tensor, block_size: int, interpret: bool = False) -> torch.Tensor:
    """``q · scale`` per block, flat ``(n,)`` in ``scale``'s dtype."""
    check_inputs(scale, block_size)
    q = q.reshape(-1).contiguous()  # (n,) int8
    n, n_blocks = q.numel(), scale.numel()
    out = torch.empty(n, dtype=scale.dtype, device=q.device)
    b_p2, rows, programs = _grid(n, block_size)
    with _mode(interpret):
        _kernels(interpret)._absmax_dequantize_kernel[(programs,)](
            q, scale.contiguous(), out, n, n_blocks, B=block_size, B_P2=b_p2, ROWS=rows, num_warps=NUM_WARPS, enable_fp_fusion=False)
    return out


def nf4_dequantize(packed: torch.Tensor, absmax: torch.Tensor, levels: torch.Tensor, n: int, block_size: int,
                   dtype: torch.dtype, interpret: bool = False, lookup: str | None = None, tile: int | None = None,
                   num_warps: int | None = None) -> torch.Tensor:
    """``levels[code] · absmax(block)``, flat ``(n,)`` in ``dtype``; ``levels`` the 16 float32 NF4 levels.

    ``lookup`` (one of :data:`NF4_LOOKUPS`), ``tile`` (elements a program, a power of two) and ``num_warps``
    choose the kernel variant (defaults: :data:`NF4_LOOKUP`, :data:`NF4_TILE`, :data:`NF4_NUM_WARPS`); every
    variant gives the same bits."""
    lookup = NF4_LOOKUP if lookup is None else lookup
    tile = NF4_TILE if tile is None else tile
    num_warps = NF4_NUM_WARPS if num_warps is None else num_warps
    if lookup not in NF4_LOOKUPS:
        raise ValueError(f"lookup={lookup!r}: one of {NF4_LOOKUPS}")
    out = torch.empty(n, dtype=dtype, device=packed.device)
    check_inputs(out, block_size)
    b_p2, rows, programs = _grid(n, block_size, tile)
    with _mode(interpret):
        _kernels(interpret)._nf4_dequantize_kernel[(programs,)](
            packed.contiguous(), absmax.contiguous(), levels.to(torch.float32).contiguous(), out, n, absmax.numel(),
            B=block_size, B_P2=b_p2, ROWS=rows, LOOKUP=lookup, num_warps=num_warps, enable_fp_fusion=False)
    return out


# ------------------------------------------------------------------------------------------ interpreter
_INTERPRETED = None  # this module's interpreted copy, built on first use (flash_triton.interpreted_copy)


def _kernels(interpret: bool):
    """This module (compiled kernels) or its private interpreted copy."""
    module = sys.modules[__name__]
    return interpreted_copy(module) if interpret else module
