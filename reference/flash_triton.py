"""FlashAttention-2 in Triton, forward and backward: the speed reference on GPU.

Same algorithm as ``reference/flash.py`` (read that first: it is the readable version); here speed rules.
Built for Hopper (H100/H200), after the structure of Triton's fused-attention tutorial and the
FlashAttention-2 paper (Dao, 2023):

* forward: one program per (query block, batch·head); the query tile stays in registers while key and
  value tiles stream through shared memory (TMA descriptors, software-pipelined by ``num_stages``);
  running max ``m`` and running sum ``l`` in base 2 (``exp2``, with ``log2(e)`` folded into the scale);
  the loop is split into an unmasked part and a masked part, so the mask costs nothing on full blocks;
* causal block skipping: key blocks after the diagonal are never visited (half the work);
* any T: rows and columns past the end are zero-filled by the TMA descriptor (or a masked load) and the
  last key block is masked; outputs are clipped at the end of each head;
* backward by recomputation from the saved log-sum-exp: a preprocessing pass ``delta = rowsum(dO∘O) −
  dlse``, one kernel for dK, dV (one program per key block, looping over query blocks) and one for dQ
  (one program per query block, looping over key blocks): no atomics, no T×T tensor anywhere;
* block sizes, warps and pipeline depth autotuned per (head dim, causal, sequence-length bucket, dtype).

Shapes: q (B, H, Tq, D), k and v (B, H, Tk, D), fp16 or bf16, D in {16, 32, 64, 128, 256}; causal is
top-left aligned (query i sees keys j <= i, like torch SDPA). Returns o (B, H, Tq, D) and the natural
log-sum-exp (B, H, Tq) in float32.

CPU: ``attention(..., interpret=True)`` runs the same kernels in Triton's interpreter (numpy, slow: small
sizes only), from a private copy of this module built with the interpreter switched on; the compiled GPU
kernels of this module are untouched by it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import sys
import threading
import types

import torch
import triton
import triton.language as tl

SUPPORTED_DTYPES = (torch.float16, torch.bfloat16)
SUPPORTED_HEAD_DIMS = (16, 32, 64, 128, 256)
BLOCK_CHOICES = (16, 32, 64, 128)
LSE_PAD = 128  # the saved log-sum-exp rows are padded to a multiple of the largest block
LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453


# ------------------------------------------------------------------------------------------ tile access
# Only Triton builtins (and the jit helpers of this file) are used inside the kernels, never the jit
# functions of triton.language's standard library (tl.zeros, tl.sum, tl.max, tl.cdiv): that keeps the
# private interpreted copy of this module (see the end of the file) self-contained.
@triton.jit
def _max_combine(a, b):
    return tl.maximum(a, b)


@triton.jit
def _add_combine(a, b):
    return a + b


@triton.jit
def _rowmax(x):
    return tl.reduce(x, 1, _max_combine)


@triton.jit
def _rowsum(x):
    return tl.reduce(x, 1, _add_combine)


@triton.jit
def _load(base, desc, row0, n_rows, BLOCK: tl.constexpr, D: tl.constexpr, USE_TMA: tl.constexpr):
    """Rows row0 .. row0+BLOCK of a (n_rows, D) row-major matrix; rows past the end read as 0."""
    if USE_TMA:
        return desc.load([row0, 0])
    else:
        rows = row0 + tl.arange(0, BLOCK)
        cols = tl.arange(0, D)
        return tl.load(base + rows[:, None] * D + cols[None, :], mask=rows[:, None] < n_rows, other=0.0)


@triton.jit
def _store(base, desc, row0, n_rows, value, BLOCK: tl.constexpr, D: tl.constexpr, USE_TMA: tl.constexpr):
    """Write rows row0 .. row0+BLOCK, clipped at n_rows."""
    if USE_TMA:
        desc.store([row0, 0], value)
    else:
        rows = row0 + tl.arange(0, BLOCK)
        cols = tl.arange(0, D)
        tl.store(base + rows[:, None] * D + cols[None, :], value, mask=rows[:, None] < n_rows)


@triton.jit
def _desc(base, n_rows, BLOCK: tl.constexpr, D: tl.constexpr, USE_TMA: tl.constexpr):
    """A TMA descriptor over one head's (n_rows, D) matrix (out-of-range rows zero-filled / clipped)."""
    if USE_TMA:
        return tl.make_tensor_descriptor(base, shape=[n_rows, D], strides=[D, 1], block_shape=[BLOCK, D])
    else:
        return base


# ---------------------------------------------------------------------------------------------- forward
@triton.jit
def _fwd_inner(acc, l_i, m_i, q, k_base, k_desc, v_base, v_desc, offs_m, lo, hi, Tk, qk_scale,
               BLOCK_N: tl.constexpr, D: tl.constexpr, MASK: tl.constexpr, CAUSAL: tl.constexpr,
               USE_TMA: tl.constexpr):
    """Online softmax over key blocks lo..hi (multiples of BLOCK_N): the FlashAttention-2 inner loop."""
    for start_n in tl.range(lo, hi, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        k = _load(k_base, k_desc, start_n, Tk, BLOCK_N, D, USE_TMA)
        qk = tl.dot(q, tl.trans(k))  # (BM, BN) fp32
        if MASK:
            offs_n = start_n + tl.arange(0, BLOCK_N)
            keep = offs_n[None, :] < Tk
            if CAUSAL:
                keep = keep & (offs_n[None, :] <= offs_m[:, None])
            qk = tl.where(keep, qk * qk_scale, float("-inf"))
            m_ij = tl.maximum(m_i, _rowmax(qk))
            qk = qk - m_ij[:, None]
        else:
            m_ij = tl.maximum(m_i, _rowmax(qk) * qk_scale)
            qk = qk * qk_scale - m_ij[:, None]
        p = tl.math.exp2(qk)
        alpha = tl.math.exp2(m_i - m_ij)  # rescale what was summed under the old max
        l_i = l_i * alpha + _rowsum(p)
        acc = acc * alpha[:, None]
        v = _load(v_base, v_desc, start_n, Tk, BLOCK_N, D, USE_TMA)
        acc = tl.dot(p.to(v.dtype), v, acc)
        m_i = m_ij
    return acc, l_i, m_i


@triton.jit
def _attn_fwd(Q, K, V, O, L, qk_scale, Tq, Tk, L_stride, T_BUCKET,
              D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr,
              USE_TMA: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    m0 = pid_m * BLOCK_M
    q_base = Q + bh * Tq * D
    k_base = K + bh * Tk * D
    v_base = V + bh * Tk * D
    o_base = O + bh * Tq * D
    q_desc = _desc(q_base, Tq, BLOCK_M, D, USE_TMA)
    k_desc = _desc(k_base, Tk, BLOCK_N, D, USE_TMA)
    v_desc = _desc(v_base, Tk, BLOCK_N, D, USE_TMA)
    o_desc = _desc(o_base, Tq, BLOCK_M, D, USE_TMA)

    offs_m = m0 + tl.arange(0, BLOCK_M)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.full([BLOCK_M], 0.0, tl.float32)
    acc = tl.full([BLOCK_M, D], 0.0, tl.float32)
    q = _load(q_base, q_desc, m0, Tq, BLOCK_M, D, USE_TMA)

    if CAUSAL:
        hi = tl.minimum(m0 + BLOCK_M, Tk)  # causal block skipping: nothing right of the diagonal
        full = (tl.minimum(m0, Tk) // BLOCK_N) * BLOCK_N  # keys < m0 are seen by every row of the block
    else:
        hi = Tk
        full = (Tk // BLOCK_N) * BLOCK_N
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, k_desc, v_base, v_desc, offs_m, 0, full, Tk,
                               qk_scale, BLOCK_N, D, False, CAUSAL, USE_TMA)
    acc, l_i, m_i = _fwd_inner(acc, l_i, m_i, q, k_base, k_desc, v_base, v_desc, offs_m, full, hi, Tk,
                               qk_scale, BLOCK_N, D, True, CAUSAL, USE_TMA)
    lse2 = m_i + tl.math.log2(l_i)  # log2-sum-exp2 of the scaled scores
    acc = acc / l_i[:, None]
    tl.store(L + bh * L_stride + offs_m, lse2, mask=offs_m < Tq)
    _store(o_base, o_desc, m0, Tq, acc.to(O.dtype.element_ty), BLOCK_M, D, USE_TMA)


# --------------------------------------------------------------------------------------------- backward
@triton.jit
def _bwd_preprocess(O, DO, DLSE, DELTA, Tq, L_stride, HAS_DLSE: tl.constexpr,
                    D: tl.constexpr, BLOCK_M: tl.constexpr):
    """delta_i = sum_d O_id dO_id − dlse_i (the lse's own gradient enters the softmax backward here)."""
    bh = tl.program_id(1).to(tl.int64)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.arange(0, D)
    inside = offs_m < Tq
    o = tl.load(O + bh * Tq * D + offs_m[:, None] * D + cols[None, :], mask=inside[:, None], other=0.0)
    do = tl.load(DO + bh * Tq * D + offs_m[:, None] * D + cols[None, :], mask=inside[:, None], other=0.0)
    delta = _rowsum(o.to(tl.float32) * do.to(tl.float32))
    if HAS_DLSE:
        delta -= tl.load(DLSE + bh * Tq + offs_m, mask=inside, other=0.0)
    tl.store(DELTA + bh * L_stride + offs_m, delta)


@triton.jit
def _dkdv_inner(dk, dv, k, v, q_base, q_desc, do_base, do_desc, L_row, DELTA_row, offs_n, lo, hi, Tq,
                qk_scale, BLOCK_M: tl.constexpr, D: tl.constexpr, MASK: tl.constexpr, USE_TMA: tl.constexpr):
    """Accumulate dK, dV of one key block over query blocks lo..hi (the transposed recomputation)."""
    for start_m in tl.range(lo, hi, BLOCK_M):
        start_m = tl.multiple_of(start_m, BLOCK_M)
        offs_m = start_m + tl.arange(0, BLOCK_M)
        q = _load(q_base, q_desc, start_m, Tq, BLOCK_M, D, USE_TMA)
        lse2 = tl.load(L_row + offs_m)  # padded rows hold +inf: their P is exactly 0
        qkT = tl.dot(k, tl.trans(q))  # (BN, BM)
        pT = tl.math.exp2(qkT * qk_scale - lse2[None, :])
        if MASK:
            pT = tl.where(offs_m[None, :] >= offs_n[:, None], pT, 0.0)
        do = _load(do_base, do_desc, start_m, Tq, BLOCK_M, D, USE_TMA)
        dv = tl.dot(pT.to(do.dtype), do, dv)  # dV += P^T dO
        delta = tl.load(DELTA_row + offs_m)
        dpT = tl.dot(v, tl.trans(do))  # (dO V^T)^T
        dsT = pT * (dpT - delta[None, :])  # dS = P ∘ (dP − delta)
        dk = tl.dot(dsT.to(q.dtype), q, dk)  # dK += dS^T Q (times the scale, at the end)
    return dk, dv


@triton.jit
def _attn_bwd_dkdv(Q, K, V, DO, L, DELTA, DK, DV, qk_scale, sm_scale, Tq, Tk, L_stride, T_BUCKET,
                   D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr,
                   USE_TMA: tl.constexpr):
    pid_n = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    n0 = pid_n * BLOCK_N
    q_base = Q + bh * Tq * D
    do_base = DO + bh * Tq * D
    k_base = K + bh * Tk * D
    v_base = V + bh * Tk * D
    q_desc = _desc(q_base, Tq, BLOCK_M, D, USE_TMA)
    do_desc = _desc(do_base, Tq, BLOCK_M, D, USE_TMA)
    k_desc = _desc(k_base, Tk, BLOCK_N, D, USE_TMA)
    v_desc = _desc(v_base, Tk, BLOCK_N, D, USE_TMA)
    dk_desc = _desc(DK + bh * Tk * D, Tk, BLOCK_N, D, USE_TMA)
    dv_desc = _desc(DV + bh * Tk * D, Tk, BLOCK_N, D, USE_TMA)

    offs_n = n0 + tl.arange(0, BLOCK_N)
    k = _load(k_base, k_desc, n0, Tk, BLOCK_N, D, USE_TMA)
    v = _load(v_base, v_desc, n0, Tk, BLOCK_N, D, USE_TMA)
    dk = tl.full([BLOCK_N, D], 0.0, tl.float32)
    dv = tl.full([BLOCK_N, D], 0.0, tl.float32)
    L_row = L + bh * L_stride
    DELTA_row = DELTA + bh * L_stride
    end = (Tq + BLOCK_M - 1) // BLOCK_M * BLOCK_M
    if CAUSAL:
        lo = (n0 // BLOCK_M) * BLOCK_M  # earlier queries see none of these keys: skipped
        mid = tl.minimum((n0 + BLOCK_N + BLOCK_M - 1) // BLOCK_M * BLOCK_M, end)  # blocks across the diagonal
        dk, dv = _dkdv_inner(dk, dv, k, v, q_base, q_desc, do_base, do_desc, L_row, DELTA_row, offs_n, lo,
                             mid, Tq, qk_scale, BLOCK_M, D, True, USE_TMA)
    else:
        mid = 0
    dk, dv = _dkdv_inner(dk, dv, k, v, q_base, q_desc, do_base, do_desc, L_row, DELTA_row, offs_n, mid, end,
                         Tq, qk_scale, BLOCK_M, D, False, USE_TMA)
    _store(DK + bh * Tk * D, dk_desc, n0, Tk, (dk * sm_scale).to(DK.dtype.element_ty), BLOCK_N, D, USE_TMA)
    _store(DV + bh * Tk * D, dv_desc, n0, Tk, dv.to(DV.dtype.element_ty), BLOCK_N, D, USE_TMA)


@triton.jit
def _dq_inner(dq, q, do, lse2, delta, k_base, k_desc, v_base, v_desc, offs_m, lo, hi, Tk, qk_scale,
              BLOCK_N: tl.constexpr, D: tl.constexpr, MASK: tl.constexpr, CAUSAL: tl.constexpr,
              USE_TMA: tl.constexpr):
    """Accumulate dQ of one query block over key blocks lo..hi."""
    for start_n in tl.range(lo, hi, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        k = _load(k_base, k_desc, start_n, Tk, BLOCK_N, D, USE_TMA)
        v = _load(v_base, v_desc, start_n, Tk, BLOCK_N, D, USE_TMA)
        qk = tl.dot(q, tl.trans(k))
        p = tl.math.exp2(qk * qk_scale - lse2[:, None])
        if MASK:
            offs_n = start_n + tl.arange(0, BLOCK_N)
            keep = offs_n[None, :] < Tk
            if CAUSAL:
                keep = keep & (offs_n[None, :] <= offs_m[:, None])
            p = tl.where(keep, p, 0.0)
        dp = tl.dot(do, tl.trans(v))
        ds = p * (dp - delta[:, None])
        dq = tl.dot(ds.to(k.dtype), k, dq)  # dQ += dS K (times the scale, at the end)
    return dq


@triton.jit
def _attn_bwd_dq(Q, K, V, DO, L, DELTA, DQ, qk_scale, sm_scale, Tq, Tk, L_stride, T_BUCKET,
                 D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr,
                 USE_TMA: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    m0 = pid_m * BLOCK_M
    q_base = Q + bh * Tq * D
    do_base = DO + bh * Tq * D
    k_base = K + bh * Tk * D
    v_base = V + bh * Tk * D
    q_desc = _desc(q_base, Tq, BLOCK_M, D, USE_TMA)
    do_desc = _desc(do_base, Tq, BLOCK_M, D, USE_TMA)
    dq_desc = _desc(DQ + bh * Tq * D, Tq, BLOCK_M, D, USE_TMA)
    k_desc = _desc(k_base, Tk, BLOCK_N, D, USE_TMA)
    v_desc = _desc(v_base, Tk, BLOCK_N, D, USE_TMA)

    offs_m = m0 + tl.arange(0, BLOCK_M)
    q = _load(q_base, q_desc, m0, Tq, BLOCK_M, D, USE_TMA)
    do = _load(do_base, do_desc, m0, Tq, BLOCK_M, D, USE_TMA)
    lse2 = tl.load(L + bh * L_stride + offs_m)
    delta = tl.load(DELTA + bh * L_stride + offs_m)
    dq = tl.full([BLOCK_M, D], 0.0, tl.float32)
    if CAUSAL:
        hi = tl.minimum(m0 + BLOCK_M, Tk)
        full = (tl.minimum(m0, Tk) // BLOCK_N) * BLOCK_N
    else:
        hi = Tk
        full = (Tk // BLOCK_N) * BLOCK_N
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, k_desc, v_base, v_desc, offs_m, 0, full, Tk, qk_scale,
                   BLOCK_N, D, False, CAUSAL, USE_TMA)
    dq = _dq_inner(dq, q, do, lse2, delta, k_base, k_desc, v_base, v_desc, offs_m, full, hi, Tk, qk_scale,
                   BLOCK_N, D, True, CAUSAL, USE_TMA)
    _store(DQ + bh * Tq * D, dq_desc, m0, Tq, (dq * sm_scale).to(DQ.dtype.element_ty), BLOCK_M, D, USE_TMA)


# ----------------------------------------------------------------------------------------------- tuning
# Two forward programs per SM. One 8-warp program with 128-row tiles holds a whole SM at D = 128 (its shared
# memory) and Triton 3.6 waits for every Hopper matmul as soon as it is issued, so the tensor cores idle while
# the program's softmax runs. With registers capped at 128 a thread (``maxnreg``) and few pipeline stages, two
# programs fit on one SM and the warp schedulers overlap one's softmax with the other's matmuls: the ping-pong
# of FlashAttention-3, obtained from occupancy instead of written by hand. Measured on an H100 against the
# autotuned winner of the space without them (benchmarks/flash-profile-h100.md): 1.02-1.08x at 12 of the 20
# forward points, never chosen where it loses (the autotuner times it beside the others).
TWO_PER_SM = True
TWO_PER_SM_FWD = [(128, 64, 8, 2, 128), (128, 128, 8, 3, 128)]  # (BLOCK_M, BLOCK_N, warps, stages, maxnreg)


def _configs(kind: str, two_per_sm: bool | None = None) -> list:
    """Hopper search space (kept small: every config compiles once per head dim, causal flag and dtype).

    TMA descriptors are part of the space: on an H200 they win on long sequences, while plain loads win
    on short ones, where the per-program descriptor set-up is not amortised (measured, see benchmarks/).
    An entry is (BLOCK_M, BLOCK_N, num_warps, num_stages[, maxnreg])."""
    if kind == "fwd":
        # the 64-row tiles are for short causal sequences, where a 128-row tile straddling the diagonal
        # wastes half its work (measured: 0.98x SDPA flash at D=64, causal, T=1k without them)
        space = [(128, 128, 8, 3), (128, 64, 4, 3), (128, 64, 8, 4), (128, 128, 8, 2), (64, 64, 4, 3), (64, 128, 4, 3)]
        if TWO_PER_SM if two_per_sm is None else two_per_sm:
            space = space + TWO_PER_SM_FWD
    elif kind == "dkdv":  # (BLOCK_M over queries, BLOCK_N: the key block a program owns)
        space = [(64, 128, 8, 3), (32, 128, 4, 4), (64, 64, 4, 3), (32, 64, 4, 4)]
    else:  # dq: (BLOCK_M: the query block a program owns, BLOCK_N over keys)
        space = [(128, 64, 8, 3), (128, 32, 4, 4), (64, 64, 4, 3), (128, 64, 4, 2)]
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "USE_TMA": tma}, num_warps=warps, num_stages=stages,
                          maxnreg=cap[0] if cap else None)
            for tma in (True, False) for bm, bn, warps, stages, *cap in space]


def _prune(configs, named_args, **kwargs):
    d = named_args.get("D", kwargs.get("D"))
    hopper = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 9
    keep = []
    for c in configs:
        bm, bn = c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"]
        if c.kwargs["USE_TMA"] and not hopper:
            continue
        if d >= 256 and (bm * bn > 64 * 64 or c.num_stages > 2):  # registers and shared memory of a 256-wide head
            continue
        if c.maxnreg is not None and d * bn > 64 * 128:  # 128 registers a thread would spill there
            continue
        keep.append(c)
    return keep or [triton.Config({"BLOCK_M": 32, "BLOCK_N": 32, "USE_TMA": False}, num_warps=4, num_stages=1)]


_KEY = ["T_BUCKET", "D", "CAUSAL"]
_PRUNE = {"early_config_prune": _prune}
_attn_fwd_tuned = triton.autotune(_configs("fwd"), key=_KEY, prune_configs_by=_PRUNE)(_attn_fwd)
_attn_bwd_dkdv_tuned = triton.autotune(_configs("dkdv"), key=_KEY, prune_configs_by=_PRUNE)(_attn_bwd_dkdv)
_attn_bwd_dq_tuned = triton.autotune(_configs("dq"), key=_KEY, prune_configs_by=_PRUNE)(_attn_bwd_dq)


def _bucket(t: int) -> int:
    """Sequence lengths share a tuning below 2k, up to 8k, and beyond."""
    return 1024 if t <= 2048 else (8192 if t <= 8192 else 16384)


# ----------------------------------------------------------------------------------------- host wrappers
def _set_allocator(device: torch.device) -> None:
    """Device-side TMA descriptors need a little global scratch memory (a context-local Triton setting)."""
    def alloc(size: int, alignment: int, stream):
        return torch.empty(size, dtype=torch.int8, device=device)

    triton.set_allocator(alloc)


def use_tma_default(device: torch.device) -> bool:
    """TMA descriptors on Hopper and newer; plain masked loads elsewhere."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9


def check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"q.dtype: the Triton kernel supports float16 and bfloat16, got {q.dtype}")
    if q.shape[-1] not in SUPPORTED_HEAD_DIMS:
        raise ValueError(f"head dim D={q.shape[-1]}: the Triton kernel supports D in {SUPPORTED_HEAD_DIMS}")


def _check_blocks(block_q, block_k) -> None:
    for name, b in (("block_q", block_q), ("block_k", block_k)):
        if b is not None and b not in BLOCK_CHOICES:
            raise ValueError(f"{name}={b}: the Triton kernel takes block sizes in {BLOCK_CHOICES}")


def _tuned(block_q, block_k, use_tma, interpret) -> bool:
    """Autotuned unless the caller fixed the blocks or the load path (or runs the interpreter)."""
    return block_q is None and block_k is None and use_tma is None and not interpret


def _launch_fwd(q, k, v, o, lse2, qk_scale, causal, block_q, block_k, use_tma, interpret):
    kern = _kernels(interpret)
    B, H, Tq, D = q.shape
    Tk, L_stride = k.shape[2], lse2.shape[1]
    args = (q, k, v, o, lse2, qk_scale, Tq, Tk, L_stride, _bucket(max(Tq, Tk)))
    with _mode(interpret):
        if _tuned(block_q, block_k, use_tma, interpret):
            grid = lambda meta: (triton.cdiv(Tq, meta["BLOCK_M"]), B * H)  # noqa: E731
            kern._attn_fwd_tuned[grid](*args, D=D, CAUSAL=causal)
        else:
            bm, bn, use_tma = block_q or 64, block_k or 64, bool(use_tma)
            kern._attn_fwd[(triton.cdiv(Tq, bm), B * H)](*args, D=D, BLOCK_M=bm, BLOCK_N=bn, CAUSAL=causal,
                                                         USE_TMA=use_tma, num_warps=4, num_stages=2)


def _launch_bwd(q, k, v, o, do, dlse, lse2, dq, dk, dv, qk_scale, scale, causal, block_q, block_k, use_tma,
                interpret):
    kern = _kernels(interpret)
    B, H, Tq, D = q.shape
    Tk, L_stride = k.shape[2], lse2.shape[1]
    delta = torch.empty((B * H, L_stride), dtype=torch.float32, device=q.device)
    has_dlse = dlse is not None
    dlse = dlse.contiguous().float() if has_dlse else delta  # a dummy pointer when absent
    args = (qk_scale, scale, Tq, Tk, L_stride, _bucket(max(Tq, Tk)))
    with _mode(interpret):
        kern._bwd_preprocess[(L_stride // 64, B * H)](o, do, dlse, delta, Tq, L_stride, HAS_DLSE=has_dlse, D=D,
                                                      BLOCK_M=64)
        if _tuned(block_q, block_k, use_tma, interpret):
            grid_kv = lambda meta: (triton.cdiv(Tk, meta["BLOCK_N"]), B * H)  # noqa: E731
            grid_q = lambda meta: (triton.cdiv(Tq, meta["BLOCK_M"]), B * H)  # noqa: E731
            kern._attn_bwd_dkdv_tuned[grid_kv](q, k, v, do, lse2, delta, dk, dv, *args, D=D, CAUSAL=causal)
            kern._attn_bwd_dq_tuned[grid_q](q, k, v, do, lse2, delta, dq, *args, D=D, CAUSAL=causal)
        else:
            bm, bn, use_tma = block_q or 64, block_k or 64, bool(use_tma)
            fixed = dict(D=D, BLOCK_M=bm, BLOCK_N=bn, CAUSAL=causal, USE_TMA=use_tma, num_warps=4, num_stages=2)
            kern._attn_bwd_dkdv[(triton.cdiv(Tk, bn), B * H)](q, k, v, do, lse2, delta, dk, dv, *args, **fixed)
            kern._attn_bwd_dq[(triton.cdiv(Tq, bm), B * H)](q, k, v, do, lse2, delta, dq, *args, **fixed)


class _TritonAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, causal, scale, block_q, block_k, use_tma, interpret):
        B, H, Tq, D = q.shape
        Tk = k.shape[2]
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()  # (B, H, T, D) row-major
        if not interpret:
            _set_allocator(q.device)
        o = torch.empty_like(q)
        L_stride = triton.cdiv(max(Tq, 1), LSE_PAD) * LSE_PAD
        # log2-domain lse, padded with +inf so that padded query rows get P = 0 in the backward
        lse2 = torch.full((B * H, L_stride), float("inf"), dtype=torch.float32, device=q.device)
        if Tk == 0:  # no key at all: every row is fully masked -> output 0, lse -inf
            o.zero_()
            lse2.fill_(float("-inf"))
        elif Tq > 0:
            _launch_fwd(q, k, v, o, lse2, scale * LOG2E, causal, block_q, block_k, use_tma, interpret)
        ctx.save_for_backward(q, k, v, o, lse2)  # O(T·D): no T×T tensor is kept
        ctx.config = (causal, scale, block_q, block_k, use_tma, interpret)
        lse = lse2[:, :Tq].reshape(B, H, Tq) * LN2  # natural log, (B, H, Tq)
        return o, lse

    @staticmethod
    def backward(ctx, do, dlse):
        q, k, v, o, lse2 = ctx.saved_tensors
        causal, scale, block_q, block_k, use_tma, interpret = ctx.config
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        if q.shape[2] > 0 and k.shape[2] > 0:
            if not interpret:
                _set_allocator(q.device)
            do = do.contiguous() if do is not None else torch.zeros_like(o)
            _launch_bwd(q, k, v, o, do, dlse, lse2, dq, dk, dv, scale * LOG2E, scale, causal, block_q, block_k,
                        use_tma, interpret)
        return dq, dk, dv, None, None, None, None, None, None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False, scale: float | None = None,
              block_q: int | None = None, block_k: int | None = None, use_tma: bool | None = None,
              interpret: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(o, lse) of softmax(scale · q kᵀ [causal mask]) v, differentiable in q, k, v (and through lse).

    ``block_q``/``block_k`` fix the tile sizes and ``use_tma`` the load path (TMA descriptors or masked
    pointer loads); when none is given, blocks, warps, stages and the load path are autotuned; ``interpret`` runs the kernels in Triton's interpreter
    on CPU tensors. Shapes and dtypes are checked by the caller (``reference.flash``) and by ``check_inputs``.
    """
    check_inputs(q, k, v)
    _check_blocks(block_q, block_k)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    if use_tma is None and (block_q is not None or block_k is not None or interpret):
        use_tma = (not interpret) and use_tma_default(q.device)  # fixed blocks: TMA where the chip has it
    return _TritonAttention.apply(q, k, v, bool(causal), float(scale), block_q, block_k, use_tma,
                                  bool(interpret))


# ------------------------------------------------------------------------------------------ interpreter
_INTERPRETED = None  # this module's interpreted copy, built on first use (interpreted_copy)
_LOCK = threading.Lock()


def _kernels(interpret: bool):
    """This module (compiled kernels) or its private interpreted copy."""
    module = sys.modules[__name__]
    return interpreted_copy(module) if interpret else module


@contextlib.contextmanager
def _mode(interpret: bool):
    """Launches of interpreted kernels run with Triton's interpreter switched on (restored after)."""
    if not interpret:
        yield
        return
    from triton.runtime import interpreter

    original = interpreter._patch_lang_tensor  # private: the interpreter has no public hook for this fix

    def patch_tensor(tensor, scope):
        # Triton 3.6's interpreter turns a scalar (a 1-element array) into a loop bound with int(array),
        # which numpy >= 2.4 refuses for arrays of one dimension; take the element instead.
        original(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interpreter._patch_lang_tensor = patch_tensor
    try:
        with triton.knobs.runtime.scope():
            triton.knobs.runtime.interpret = True
            yield
    finally:
        interpreter._patch_lang_tensor = original


def interpreted_copy(module: types.ModuleType) -> types.ModuleType:
    """A second copy of ``module``'s file loaded with Triton's interpreter on: ``@triton.jit`` there yields
    interpreted functions that run on CPU tensors. The copy never replaces the module, so compiled GPU
    kernels and interpreted ones coexist in one process. Built once and kept as ``module._INTERPRETED``
    (where the kernel mutants put a copy of their own); shared by every module of Triton kernels."""
    with _LOCK:
        if module._INTERPRETED is None:
            spec = importlib.util.spec_from_file_location(module.__name__ + "_interpreted", module.__file__)
            copy = importlib.util.module_from_spec(spec)
            with triton.knobs.runtime.scope():
                triton.knobs.runtime.interpret = True
                spec.loader.exec_module(copy)
            module._INTERPRETED = copy
        return module._INTERPRETED
