"""quant benchmarks: quantize/dequantize bandwidth and the LLM.int8 matmul on one GPU (``--fmspec-bench``).

Inputs are bfloat16 (weights as QLoRA stores them) unless a name says otherwise. Quantization moves bytes
and does almost no arithmetic, so it is judged against the device's copy bandwidth: effective GB/s =
(bytes read + bytes written) / time, with the fewest bytes each operation must move (n elements, s = 2
bytes per bfloat16, b the block size, r the number of rows)::

    absmax quantize      n·s read; n codes + (n/b | r | 1)·s scales written
    absmax dequantize    n codes + (n/b | r | 1)·s scales read; n·s written
    zero-point quantize  n·s read; n codes + (n/b)·(s + 4) scales and int32 zero points written
    zero-point dequant   n codes + (n/b)·(s + 4) read; n·s written
    NF4 quantize         n·s read; n/2 packed codes + (n/b)·s block constants written
    NF4 dequantize       n/2 + (n/b)·s read; n·s written

and "fraction_of_copy_ceiling" divides by the copy bandwidth measured in the same run
(``gb.ceilings``: a 1 GiB device-to-device copy, read + write). Sizes 1M to 256M elements (NF4 to 64M), blocks of 64
(QLoRA's), rows of 4096. Each point times the candidate, the readable reference (the code of
``reference/quant.py`` with its Triton dispatch switched off) and, where one exists, the Triton kernel of
``reference/quant_triton.py`` called directly; the record says whether the kernel's output equals the
readable reference's bit for bit on that input.

LLM.int8 (``quant.int8_matmul``, x (M, K) bf16 with outliers in 0.5% of the feature columns, w (N, K)
bf16): FLOPs = 2·M·N·K; compared with ``torch._int_mm`` on codes quantized beforehand (the int8 GEMM
alone, the floor of any int8 path) and a bf16 ``x @ w.T``; bytes = x, w read and y written in bf16.

A candidate is timed only if it passed the quant conformance tests earlier in the run.
"""

from __future__ import annotations

import contextlib
import functools

import pytest
import torch

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb

pytestmark = [pytest.mark.component("quant"), pytest.mark.bench, pytest.mark.gpu]
SIZES = [2**20, 2**22, 2**24, 2**26, 2**28]
BLOCK, ROW = 64, 4096
ABSMAX_OPS = ["absmax_block_quantize", "absmax_block_dequantize", "absmax_row_quantize", "absmax_row_dequantize",
              "absmax_tensor_quantize", "absmax_tensor_dequantize"]
NF4_MAX = 2**26  # the readable NF4 quantizer (which also makes the dequantizer's input) holds an (n, 16) distance matrix
MM_SHAPES = [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 4096, 14336)]  # (M, K, N)
_BASELINES: dict[tuple, dict] = {}  # (op, n) -> {name: timing or None, "triton_bit_exact": bool}


def layout(op: str, n: int) -> dict:
    if "_block_" in op or op.startswith(("zeropoint", "nf4")):
        return {"block_size": BLOCK}
    return {"dim": -1} if "_row_" in op else {}


def cost(op: str, n: int) -> gb.Cost:
    s = 2  # bytes per bfloat16
    groups = n // BLOCK if "_block_" in op or op.startswith(("zeropoint", "nf4")) else (n // ROW if "_row_" in op else 1)
    if op.startswith("absmax"):
        io = n * s + n + groups * s
        model = "n·s + n + groups·s (x, codes, scales)"
    elif op.startswith("zeropoint"):
        io = n * s + n + groups * (s + 4)
        model = "n·s + n + (n/b)·(s + 4) (x, codes, scales, int32 zero points)"
    else:
        io = n * s + n // 2 + groups * s
        model = "n·s + n/2 + (n/b)·s (x, packed codes, block constants)"
    return gb.Cost(0.0, io, model)


def _inputs(op: str, n: int, quant) -> tuple:
    """The arguments of ``op`` (its quantized inputs made by ``quant``, a quant namespace)."""
    x = _x(n)
    kw = layout(op, n)
    if op.endswith("_quantize"):
        return (x,), kw
    if op.startswith("absmax"):
        return quant.absmax_quantize(x, **kw), kw
    if op.startswith("zeropoint"):
        return quant.zeropoint_quantize(x, **kw), kw
    return (quant.nf4_quantize(x, **kw),), {}


@functools.lru_cache(maxsize=1)
def _x(n: int) -> torch.Tensor:
    """(n / 4096, 4096) standard normal bf16 on the GPU (drawn there: a CPU draw of 2^28 takes seconds)."""
    gen = torch.Generator(device="cuda").manual_seed(n)
    return torch.randn((n // ROW, ROW), generator=gen, device="cuda", dtype=torch.float32).to(torch.bfloat16)


def _fn(namespace, op: str):
    name = {"absmax": "absmax", "zeropoint": "zeropoint", "nf4": "nf4"}[op.split("_")[0]]
    return getattr(namespace, f"{name}_{'quantize' if op.endswith('_quantize') else 'dequantize'}")


@contextlib.contextmanager
def _readable():
    """The reference with its Triton dispatch off: every call takes the readable code."""
    from fmspec.reference import quant as refq

    saved = refq.TRITON_MIN_NUMEL
    refq.TRITON_MIN_NUMEL = 1 << 62
    try:
        yield refq
    finally:
        refq.TRITON_MIN_NUMEL = saved


def _triton_fn(op: str, args: tuple, kw: dict):
    """A direct call of the Triton kernel for ``op`` (None where there is none)."""
    from fmspec.reference import quant_triton as qt

    if op == "absmax_block_quantize":
        return lambda: qt.absmax_quantize(args[0], BLOCK)
    if op == "absmax_row_quantize":
        return lambda: qt.absmax_quantize(args[0], ROW)
    if op == "absmax_block_dequantize":
        return lambda: qt.absmax_dequantize(args[0], args[1], BLOCK)
    if op == "absmax_row_dequantize":
        return lambda: qt.absmax_dequantize(args[0], args[1].reshape(-1), ROW)
    if op == "nf4_dequantize":
        from fmspec.reference import quant as refq

        st = args[0]
        levels = torch.tensor(refq.NF4_LEVELS, dtype=torch.float32, device="cuda")
        return lambda: qt.nf4_dequantize(st.packed, st.absmax, levels, st.shape.numel(), BLOCK, st.dtype)
    return None


def _flat(out) -> list[torch.Tensor]:
    out = out if isinstance(out, tuple) else (out,)
    return [t.reshape(-1) for t in out]


def _baselines(op: str, n: int) -> dict:
    key = (op, n)
    if key in _BASELINES:
        return _BASELINES[key]
    res = {"readable": None, "triton": None, "triton_bit_exact": None}
    with _readable() as refq:
        args, kw = _inputs(op, n, refq)
        fn = _fn(refq, op)
        res["readable"] = gb.numbers(gb.time_ms(lambda: fn(*args, **kw)))
        tri = _triton_fn(op, args, kw)
        if tri is not None:
            tri()  # compilation stays out of the timing
            torch.cuda.synchronize()
            res["triton"] = gb.numbers(gb.time_ms(tri))
            got, expected = _flat(tri()), _flat(fn(*args, **kw))
            res["triton_bit_exact"] = all(torch.equal(a, b) for a, b in zip(got, expected))
    torch.cuda.empty_cache()
    _BASELINES[key] = res
    return res


def _bench(candidate, device, op, n, benchmark, fmspec_metrics, request) -> None:
    """Time ``op`` on n bf16 elements for the candidate, against the readable reference and the kernel."""
    conformance = bu.require_conformance(request, "quant", candidate.name)
    base = _baselines(op, n)
    quant = candidate.quant
    args, kw = _inputs(op, n, quant)
    fn = _fn(quant, op)
    fn(*args, **kw)
    torch.cuda.synchronize()
    timing = gb.time_ms(lambda: fn(*args, **kw))
    values = gb.summary(timing, cost(op, n), gb.ceilings(device, torch.bfloat16),
                        {"readable": base["readable"], "triton": base["triton"]})
    for name in ("readable", "triton"):
        t = base[name]
        gbps = cost(op, n).bytes / (t.median_ms * 1e-3) / 1e9 if t else None
        values[f"{name}_gbps"] = gbps
        values[f"{name}_fraction_of_copy_ceiling"] = gbps / values["ceiling_copy_gbps"] if t else None
        values[f"{name}_p20_ms"] = t.p20_ms if t else None
        values[f"{name}_p80_ms"] = t.p80_ms if t else None
    values.update({"op": op, "n": n, "dtype": "bfloat16", "layout": str(layout(op, n)),
                   "triton_bit_exact": base["triton_bit_exact"], "conformance": conformance})
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)


SIZE_IDS = {"ids": lambda n: f"n{n >> 20}M"}


@pytest.mark.needs("quant.absmax_quantize", "quant.absmax_dequantize")
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("n", SIZES, **SIZE_IDS)
@pytest.mark.parametrize("op", ABSMAX_OPS)
def test_absmax_bandwidth(candidate, device, op, n, benchmark, fmspec_metrics, request):
    _bench(candidate, device, op, n, benchmark, fmspec_metrics, request)


@pytest.mark.needs("quant.zeropoint_quantize", "quant.zeropoint_dequantize")
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("n", SIZES, **SIZE_IDS)
@pytest.mark.parametrize("op", ["zeropoint_quantize", "zeropoint_dequantize"])
def test_zeropoint_bandwidth(candidate, device, op, n, benchmark, fmspec_metrics, request):
    _bench(candidate, device, op, n, benchmark, fmspec_metrics, request)


@pytest.mark.needs("quant.nf4_quantize", "quant.nf4_dequantize")
@pytest.mark.capability("nf4")
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("n", SIZES, **SIZE_IDS)
@pytest.mark.parametrize("op", ["nf4_quantize", "nf4_dequantize"])
def test_nf4_bandwidth(candidate, device, op, n, benchmark, fmspec_metrics, request):
    if n > NF4_MAX:
        pytest.skip(f"NF4 above {NF4_MAX} elements: the readable quantizer's (n, 16) distances take too much memory")
    _bench(candidate, device, op, n, benchmark, fmspec_metrics, request)


def _mm_inputs(M: int, K: int, N: int):
    x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
    cols = torch.randperm(K, device="cuda")[: max(1, K // 200)]  # 0.5% outlier feature columns
    x[::7, cols] = 20.0  # |x| >= 6 in some rows of those columns
    w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16) / K**0.5
    return x, w


@pytest.mark.needs("quant.int8_matmul")
@pytest.mark.capability("int8_matmul")
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("shape", MM_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_int8_matmul_speed(candidate, device, shape, benchmark, fmspec_metrics, request):
    conformance = bu.require_conformance(request, "quant", candidate.name)
    M, K, N = shape
    x, w = _mm_inputs(M, K, N)
    qx = torch.randint(-127, 128, (M, K), dtype=torch.int8, device="cuda")
    qw = torch.randint(-127, 128, (N, K), dtype=torch.int8, device="cuda")
    # torch._int_mm: torch has no public int8 GEMM (matmul of int8 on CUDA is not implemented); it is the peer
    baselines = {"int_mm": gb.time_ms(lambda: torch._int_mm(qx, qw.T)), "bf16_matmul": gb.time_ms(lambda: x @ w.T)}
    candidate.quant.int8_matmul(x, w)
    torch.cuda.synchronize()
    timing = gb.time_ms(lambda: candidate.quant.int8_matmul(x, w))
    c = gb.Cost(2.0 * M * N * K, 2 * (M * K + N * K + M * N), "2·M·N·K; bytes: x, w read, y written (bf16)")
    values = gb.summary(timing, c, gb.ceilings(device, torch.bfloat16), baselines)
    values.update({"M": M, "K": K, "N": N, "dtype": "bfloat16", "outlier_columns": max(1, K // 200),
                   "conformance": conformance})
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)
