"""Weight quantization: absmax int8, zero-point int8, NF4 with double quantization (QLoRA), LLM.int8.

Lecture 004 ("Finetuning your own Model – QLoRa", "Model Quantization")::

    X_int8 = round(127 / absmax(X) · X) = round(c · X),      dequant(c, X_int8) = X_int8 / c ≈ X

"Outliers can cause issues → split the matrix into smaller chunks with their own c": one constant per
tensor, per row (``dim``) or per flat block of ``block_size`` consecutive elements (row-major order; the
last block may be shorter and gets its own constant).

Convention: every function returns ``scale = absmax / 127 = 1 / c``, the size of one quantization step,
so dequantization is ``q · scale`` and an all-zero block has scale 0 (not c = inf) and dequantizes to 0.
Rounding is torch.round (half to even). Each element is off by at most half a step: |x - q·scale| ≤ scale/2.

Arithmetic, to the bit: codes and NF4 values are computed in float32 for float16, bfloat16 and float32
inputs (in float16, 127 / absmax overflows once absmax < 0.002), in float64 for float64;
``c = 127 / absmax`` and ``scale = absmax / 127`` are correctly rounded divisions on every device (torch
itself turns ``t / 127`` into ``t · (1/127)`` on CUDA and ``127 / t`` into ``127 · (1/t)`` everywhere,
which differ in the last bit; both are written as tensor divisions here). That is what lets the
Triton kernels of ``reference/quant_triton.py`` give the same bits as this code.

Dispatch: blockwise (and last-dim) absmax quantize/dequantize and NF4 dequantize of float16, bfloat16
and float32 run the Triton kernels on CUDA from :data:`TRITON_MIN_NUMEL` elements (bit-exact with the
code below, which is the oracle; the suite's CUDA tests check it), and on CPU when ``TRITON_INTERPRET=1``
is set (Triton's interpreter, for the tests at small sizes); everything else runs the code below.

Worked example (per tensor): x = [1.0, -2.5, 0.3, 4.0], absmax = 4, c = 127/4 = 31.75,
c·x = [31.75, -79.375, 9.525, 127] -> q = [32, -79, 10, 127], scale = 4/127,
dequant = [1.00787, -2.48819, 0.31496, 4.0]. With the outlier 100 in x = [0.1, 0.2, -0.3, 100] every
small value rounds to 0 per tensor (c = 1.27, q = [0, 0, 0, 127]); with block_size = 3 the first block
has c = 127/0.3, q = [42, 85, -127 | 127], and comes back as [0.0992, 0.2008, -0.3 | 100].

Zero-point (asymmetric) int8 maps [min(x, 0), max(x, 0)] onto all 256 codes [-128, 127]::

    scale = (max - min) / 255,   zero_point = -128 - round(min / scale),
    q = clamp(round(x / scale) + zero_point, -128, 127),   dequant = (q - zero_point) · scale

so 0 is represented exactly (q = zero_point) and min, max get codes -128 and 127. Worked example:
x = [-1, 0, 0.25, 2]: scale = 3/255 = 1/85, zero_point = -128 + 85 = -43, q = [-128, -43, -22, 127],
dequant = [-1, 0, 21/85 = 0.24706, 2].

NF4 (Dettmers et al., "QLoRA", 2023, sec. 3 and appendix E): each block of 64 is scaled by its absmax to
[-1, 1] and every value is replaced by the index of the nearest of 16 levels, quantiles of a standard
normal (7 negative, zero, 8 positive; :data:`NF4_LEVELS`). Double quantization then quantizes the fp32
block constants too: minus their mean, absmax int8 in blocks of 256 (the paper uses an 8-bit float for
this second step; the int8 of the lecture is the simplification made here), which brings the overhead
from 32/64 = 0.5 to 8/64 + 32/(64·256) ≈ 0.127 bits per parameter.

LLM.int8 (Dettmers et al., 2022, sec. 3): in x @ w.T, feature columns of x holding any |x| ≥ threshold
(the outliers) are multiplied in full precision; the rest is quantized vector-wise (absmax per row of x
and per row of w, over the non-outlier columns), multiplied in int32 and rescaled::

    y = x[:, O] @ w[:, O].T + (qx @ qw.T) · sx · sw.T,      qx, sx = absmax(x[:, ~O], dim=-1)
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from dataclasses import dataclass

import torch

Q_MAX = 127  # int8 codes used by absmax quantization: -127..127 (symmetric; -128 unused)

# The 16 NF4 levels as published (QLoRA appendix E, float32): normal quantiles normalised to [-1, 1].
NF4_LEVELS = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)
DOUBLE_QUANT_BLOCK = 256
TRITON_MIN_NUMEL = 1 << 16  # on CUDA, smaller inputs take the code below (a few launches either way)
TRITON_MAX_BLOCK = 16384  # blocks (or rows) larger than this take the code below (quant_triton.MAX_BLOCK)


# ---------------------------------------------------------------------------------------------- helpers
def _check_float(x: object, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty")


def _check_block(block_size: object) -> None:
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
        raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")


def _to_blocks(x: torch.Tensor, block_size: int) -> torch.Tensor:
    """Flatten (row-major), pad with zeros to whole blocks: (n_blocks, block_size). Zeros change no absmax."""
    flat = x.reshape(-1)  # (n,)
    n_blocks = -(-flat.numel() // block_size)
    padded = flat.new_zeros(n_blocks * block_size)
    padded[: flat.numel()] = flat
    return padded.reshape(n_blocks, block_size)  # (n_blocks, block_size)


def _from_blocks(blocks: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return blocks.reshape(-1)[: math.prod(shape)].reshape(shape)


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype codes are computed in: float64 for float64, float32 for everything else."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _round_codes(x: torch.Tensor, absmax: torch.Tensor) -> torch.Tensor:
    """round(127 / absmax · x), with 0 where absmax is 0 (an all-zero block)."""
    work = _work_dtype(x.dtype)
    absmax = absmax.to(work)
    c = torch.div(Q_MAX, torch.where(absmax > 0, absmax, 1.0))  # the lecture's constant c, one division
    return torch.round(c * x.to(work)).to(torch.int8)


def _step(absmax: torch.Tensor) -> torch.Tensor:
    """absmax / 127, a correctly rounded division on every device (in absmax's dtype)."""
    return absmax / torch.full_like(absmax, Q_MAX)


def _kernels():
    """The Triton kernels (triton is an optional dependency: imported only when used)."""
    from fmspec.reference import quant_triton
    return quant_triton


def _use_triton(x: torch.Tensor, numel: int, block: int) -> bool:
    """Whether ``numel`` elements of ``x``'s dtype and device, in blocks of ``block``, go to the Triton kernels."""
    if x.dtype not in (torch.float16, torch.bfloat16, torch.float32) or block > TRITON_MAX_BLOCK:
        return False
    if x.is_cuda:
        return numel >= TRITON_MIN_NUMEL
    return x.device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1" \
        and importlib.util.find_spec("triton") is not None


# ------------------------------------------------------------------------------------------ absmax int8
def absmax_quantize(x: torch.Tensor, block_size: int | None = None, dim: int | None = None):
    """``(q, scale)``: int8 codes shaped like ``x`` and the step ``absmax / 127`` in ``x``'s dtype.

    ``scale`` is a 0-d tensor (per tensor), shaped like ``x`` with size 1 at ``dim`` (the absmax is taken
    over ``dim``: ``dim=-1`` gives one constant per row), or ``(ceil(x.numel() / block_size),)``.
    """
    _check_float(x)
    if block_size is not None and dim is not None:
        raise ValueError("give block_size or dim, not both")
    if block_size is not None:
        _check_block(block_size)
        if _use_triton(x, x.numel(), block_size):
            q, scale = _kernels().absmax_quantize(x, block_size, interpret=not x.is_cuda)
            return q.reshape(x.shape), scale
        blocks = _to_blocks(x, block_size)  # (n_blocks, block_size)
        absmax = blocks.abs().amax(dim=1)  # (n_blocks,)
        q = _from_blocks(_round_codes(blocks, absmax[:, None]), x.shape)
    elif dim is not None:
        if not isinstance(dim, int) or isinstance(dim, bool) or not -x.dim() <= dim < x.dim():
            raise ValueError(f"dim must be an int in [-{x.dim()}, {x.dim()}), got {dim!r}")
        if dim % x.dim() == x.dim() - 1 and x.is_contiguous() and _use_triton(x, x.numel(), x.shape[-1]):
            # one row = one block of x.shape[-1] consecutive elements
            q, scale = _kernels().absmax_quantize(x, x.shape[-1], interpret=not x.is_cuda)
            return q.reshape(x.shape), scale.reshape(*x.shape[:-1], 1)
        absmax = x.abs().amax(dim=dim, keepdim=True)  # x.shape with 1 at dim
        q = _round_codes(x, absmax)
    else:
        absmax = x.abs().amax()  # ()
        q = _round_codes(x, absmax)
    return q, _step(absmax)


def absmax_dequantize(q: torch.Tensor, scale: torch.Tensor, block_size: int | None = None,
                      dim: int | None = None) -> torch.Tensor:
    """``q · scale`` in ``scale``'s dtype, with the layout :func:`absmax_quantize` produced."""
    if not isinstance(q, torch.Tensor) or q.is_floating_point():
        raise TypeError(f"q must be an integer tensor, got {getattr(q, 'dtype', type(q).__name__)}")
    _check_float(scale, "scale")
    if block_size is not None and dim is not None:
        raise ValueError("give block_size or dim, not both")
    if block_size is not None:
        _check_block(block_size)
        n_blocks = -(-q.numel() // block_size)
        if scale.shape != (n_blocks,):
            raise ValueError(f"scale must have shape ({n_blocks},) for block_size={block_size}, "
                             f"got {tuple(scale.shape)}")
        if q.dtype == torch.int8 and _use_triton(scale, q.numel(), block_size):
            return _kernels().absmax_dequantize(q, scale, block_size, interpret=not q.is_cuda).reshape(q.shape)
        blocks = _to_blocks(q.to(scale.dtype), block_size)  # (n_blocks, block_size)
        return _from_blocks(blocks * scale[:, None], q.shape)
    if dim is not None:
        expected = list(q.shape)
        expected[dim] = 1
        if list(scale.shape) != expected:
            raise ValueError(f"scale must have shape {tuple(expected)} for dim={dim}, got {tuple(scale.shape)}")
        if (dim % q.dim() == q.dim() - 1 and q.dtype == torch.int8 and q.is_contiguous()
                and _use_triton(scale, q.numel(), q.shape[-1])):  # one row = one block
            return _kernels().absmax_dequantize(q, scale.reshape(-1), q.shape[-1],
                                                interpret=not q.is_cuda).reshape(q.shape)
    elif scale.numel() != 1:
        raise ValueError(f"scale must hold one number for per-tensor quantization, got shape {tuple(scale.shape)}")
    return q.to(scale.dtype) * scale


# -------------------------------------------------------------------------------------- zero-point int8
def zeropoint_quantize(x: torch.Tensor, block_size: int | None = None):
    """``(q, scale, zero_point)``: int8 codes, the step (max - min) / 255, and an int32 zero point.

    Per tensor (0-d scale and zero point) or per flat block (``(n_blocks,)`` each). The range always
    includes 0, so 0 quantizes to ``zero_point`` and back to exactly 0.
    """
    _check_float(x)
    if block_size is not None:
        _check_block(block_size)
    # per tensor = one block holding everything
    blocks = _to_blocks(x, block_size) if block_size is not None else x.reshape(1, -1)  # (n_blocks, b)
    n = x.numel()
    valid = (torch.arange(blocks.numel(), device=x.device) < n).reshape(blocks.shape)  # padding is not data
    lo = torch.where(valid, blocks, 0).amin(dim=1).clamp(max=0)  # (n_blocks,) min(x, 0)
    hi = torch.where(valid, blocks, 0).amax(dim=1).clamp(min=0)  # (n_blocks,) max(x, 0)
    scale = (hi - lo) / 255
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = (-128 - torch.round(lo / safe)).to(torch.int32)  # (n_blocks,) in [-128, 127]
    codes = torch.round(blocks / safe[:, None]) + zero_point[:, None]
    q = _from_blocks(codes.clamp(-128, 127).to(torch.int8), x.shape)
    if block_size is None:
        return q, scale[0], zero_point[0]
    return q, scale, zero_point


def zeropoint_dequantize(q: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                         block_size: int | None = None) -> torch.Tensor:
    """``(q - zero_point) · scale`` in ``scale``'s dtype (the subtraction in int32: no int8 overflow)."""
    if not isinstance(q, torch.Tensor) or q.is_floating_point():
        raise TypeError(f"q must be an integer tensor, got {getattr(q, 'dtype', type(q).__name__)}")
    _check_float(scale, "scale")
    if block_size is None:
        if scale.numel() != 1 or zero_point.numel() != 1:
            raise ValueError("scale and zero_point must hold one number each for per-tensor quantization")
        return (q.to(torch.int32) - zero_point.to(torch.int32)).to(scale.dtype) * scale
    _check_block(block_size)
    blocks = _to_blocks(q.to(torch.int32), block_size)  # (n_blocks, block_size)
    if scale.shape != (blocks.shape[0],) or zero_point.shape != (blocks.shape[0],):
        raise ValueError(f"scale and zero_point must have shape ({blocks.shape[0]},) for block_size={block_size}")
    out = (blocks - zero_point[:, None].to(torch.int32)).to(scale.dtype) * scale[:, None]
    return _from_blocks(out, q.shape)


# ----------------------------------------------------------------------------------- NF4 (QLoRA), tier 2
@dataclass
class NF4State:
    """What NF4 stores: 4-bit codes packed two per byte, and the block constants (maybe double-quantized)."""

    packed: torch.Tensor  # (ceil(n_padded / 2),) uint8: code of element 2i in the high nibble, 2i+1 low
    absmax: torch.Tensor | None  # (n_blocks,) block constants, or None with double quantization
    absmax_q: torch.Tensor | None  # (n_blocks,) int8 codes of absmax - absmax_mean
    absmax_scale: torch.Tensor | None  # (ceil(n_blocks / 256),) their steps
    absmax_mean: torch.Tensor | None  # () the mean subtracted before quantizing
    shape: torch.Size
    dtype: torch.dtype
    block_size: int

    def nbytes(self) -> int:
        parts = (self.packed, self.absmax, self.absmax_q, self.absmax_scale, self.absmax_mean)
        return sum(t.numel() * t.element_size() for t in parts if t is not None)


def nf4_quantize(x: torch.Tensor, block_size: int = 64, double_quant: bool = False) -> NF4State:
    """Blockwise NF4: each element becomes the index of the nearest level of x / absmax(block)."""
    _check_float(x)
    _check_block(block_size)
    blocks = _to_blocks(x, block_size)  # (n_blocks, block_size)
    absmax = blocks.abs().amax(dim=1)  # (n_blocks,) in x's dtype (QLoRA: fp32 for bf16 weights)
    normed = blocks / torch.where(absmax > 0, absmax, torch.ones_like(absmax))[:, None]  # in [-1, 1]
    levels = nf4_levels(x.dtype, x.device)  # (16,)
    codes = (normed[..., None] - levels).abs().argmin(dim=-1).to(torch.uint8).reshape(-1)  # (n_padded,)
    if codes.numel() % 2:
        codes = torch.cat([codes, codes.new_zeros(1)])
    packed = codes[0::2] << 4 | codes[1::2]  # two 4-bit codes per byte
    state = NF4State(packed, absmax, None, None, None, x.shape, x.dtype, block_size)
    if double_quant:
        mean = absmax.mean()  # the constants are all >= 0: centre them first
        state.absmax_q, state.absmax_scale = absmax_quantize(absmax - mean, block_size=DOUBLE_QUANT_BLOCK)
        state.absmax_mean, state.absmax = mean, None
    return state


@functools.lru_cache(maxsize=None)
def nf4_levels(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """:data:`NF4_LEVELS` as a (16,) tensor, built once per dtype and device (a copy to the GPU on every call
    would cost more than dequantizing a few million values). Read only: every use indexes it."""
    with torch.inference_mode(False), torch.no_grad():  # a plain tensor, whatever mode the first call came in
        return torch.tensor(NF4_LEVELS, dtype=dtype, device=device)


def nf4_dequantize(state: NF4State) -> torch.Tensor:
    """levels[code] · absmax(block), shaped and typed like the quantized tensor."""
    if not isinstance(state, NF4State):
        raise TypeError(f"state must come from nf4_quantize, got {type(state).__name__}")
    if state.absmax is not None:
        absmax = state.absmax
    else:  # double quantization: undo the second level first
        absmax = absmax_dequantize(state.absmax_q, state.absmax_scale, DOUBLE_QUANT_BLOCK) + state.absmax_mean
    work = _work_dtype(state.dtype)
    levels = nf4_levels(work, state.packed.device)  # (16,)
    n = math.prod(state.shape)
    if _use_triton(absmax, n, state.block_size):
        out = _kernels().nf4_dequantize(state.packed, absmax, levels, n, state.block_size, state.dtype,
                                        interpret=not absmax.is_cuda)
        return out.reshape(state.shape)
    codes = torch.stack([state.packed >> 4, state.packed & 0xF], dim=1).reshape(-1)  # (n_padded (+1),)
    n_blocks = absmax.numel()
    codes = codes[: n_blocks * state.block_size].reshape(n_blocks, state.block_size).long()
    out = levels[codes] * absmax.to(work)[:, None]  # (n_blocks, block_size)
    return _from_blocks(out, state.shape).to(state.dtype)


# ----------------------------------------------------------------------------------------- LLM.int8, tier 3
def _int8_dot(qx: torch.Tensor, qw: torch.Tensor) -> torch.Tensor:
    """qx @ qw.T of int8 codes, (M, K) and (N, K) -> (M, N) int32, exact while K · 127² < 2^31 (K < 133 143).

    CPU: an int32 matmul. CUDA has none ("addmm_cuda" is not implemented for Int); torch._int_mm (cuBLASLt's
    int8 GEMM, int32 accumulation) takes M > 16 and K, N multiples of 8, so zero rows and columns are added
    to reach those sizes: they change no dot product and are cut off after. (A float32 matmul of the codes
    would not do: it is exact only while every partial sum stays below 2^24, i.e. K · 127² < 2^24, K ≤ 1040.)
    """
    if not qx.is_cuda:
        return qx.to(torch.int32) @ qw.to(torch.int32).T
    (M, K), N = qx.shape, qw.shape[0]
    m, k, n = max(M, 17), -(-K // 8) * 8, -(-N // 8) * 8
    a = torch.nn.functional.pad(qx, (0, k - K, 0, m - M))  # (m, k)
    b = torch.nn.functional.pad(qw, (0, k - K, 0, n - N))  # (n, k); b.T is the column-major (k, n) cuBLASLt wants
    return torch._int_mm(a, b.T)[:M, :N]  # private: torch has no public int8 GEMM (see the docstring)


def int8_matmul(x: torch.Tensor, w: torch.Tensor, threshold: float = 6.0) -> torch.Tensor:
    """x @ w.T with LLM.int8's mixed-precision decomposition. x (..., in), w (out, in) -> (..., out)."""
    _check_float(x)
    _check_float(w, "w")
    if w.dim() != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"w must have shape (out, {x.shape[-1]}), got {tuple(w.shape)}")
    if not isinstance(threshold, (int, float)) or not threshold > 0:
        raise ValueError(f"threshold must be > 0 (math.inf: no outliers), got {threshold!r}")
    x2 = x.reshape(-1, x.shape[-1]).to(w.dtype)  # (M, K)
    outlier = (x2.abs() >= threshold).any(dim=0)  # (K,) feature columns kept in full precision
    y = x2[:, outlier] @ w[:, outlier].T  # (M, N) the outlier part, in full precision
    x_r, w_r = x2[:, ~outlier], w[:, ~outlier]  # (M, K'), (N, K')
    if x_r.shape[1]:
        qx, sx = absmax_quantize(x_r, dim=-1)  # (M, K') int8, (M, 1)
        qw, sw = absmax_quantize(w_r, dim=-1)  # (N, K') int8, (N, 1)
        acc = _int8_dot(qx, qw)  # (M, N) exact integer dot products
        y = y + acc.to(w.dtype) * sx * sw.T  # dequantize with the outer product of the row steps
    return y.reshape(*x.shape[:-1], w.shape[0]).to(x.dtype)
