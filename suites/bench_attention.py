"""attention benchmarks: dense attention against each efficient sparse form, over the sequence length, on
the CPU (first section) and on one GPU (second section, ``test_gpu_*``).

CPU
---

Grid: B = 1, H = 2, D = 32, float32, forward only (``torch.no_grad``), T in {256, 512, 1024, 2048, 4096,
8192}; q, k, v drawn from N(0, 1) (``ss.qkv``, seeded with T). Dense is ``scaled_dot_product(q, k, v)``
with no mask (the full attention the sparse forms replace); each family is ``sparse(q, k, v, pattern,
**args)`` with

=================  ===========================================  ===================================
pattern            arguments                                    keys per query W
=================  ===========================================  ===================================
sliding_window     window = 32                                  2·32 - 1 = 63, constant in T
longformer         window = 32, global_idx = (0, 1)             63 + 2, plus 2 dense rows
bigbird            block 16, r = 2, w = 3, g = 2, seed 0        16·(3 + 2 + 2) = 112, plus 32 dense rows
strided            stride = round(sqrt T)                       stride + (T - 1) // stride ~ 2·sqrt T
fixed              stride = round(sqrt T), c = 2                stride + c·ceil(T / stride) ~ 3·sqrt T
=================  ===========================================  ===================================

(BigBird's r = 2, w = 3, g = 2 are the lecture's, in blocks; strided and fixed take the stride of Child et
al., ~ sqrt T, so their W grows as sqrt T and their cost as T^1.5: only the three window families are O(T).)

Cost model, per forward call:

    dense    FLOPs 4·B·H·T²·D       (q kᵀ and weights · v, 2·T²·D each per head)
             memory B·H·T² scores (and weights)
    sparse   FLOPs 4·B·H·T·W·D      (the same two products, over the W listed keys of each query)
             memory B·H·T·W scores; an implementation that gathers the listed keys and values into
             (B, H, T, W, D) holds B·H·T·W·D elements, D times more, so its memory crosses below dense
             only when T > W·D, not when T > W

so time should cross below dense near T ≈ W (later in practice: a gather and a batch of tiny products run
far below the throughput of one large matmul), and memory near T ≈ W·D for a gathering implementation.

One thread (``torch.set_num_threads(1)`` for the module, restored after): the machine is shared, and with
two threads each small op's parallel region waits on a descheduled thread, which made T = 256 calls 5 to
80 times slower and the medians unstable; one thread times the arithmetic. Time: host clock (``time.perf_counter`` through pytest-benchmark, median of a few rounds, fewer for large
T). Memory: the largest tensor storage a torch function returns during the call, in elements
(``LargestAllocation`` in ``suites/memory.py``, one extra call that doubles as the warm-up);
bytes = 4 × elements for float32 tensors. ``test_scaling`` then fits, for each family, the log-log slope of
time and of memory against T over T >= 1024 (the exponent: 1 for O(T), 2 for O(T²)), the ratios when T
doubles, and the smallest T of the grid from which the family stays below dense (the crossing point).
Benchmark tests only record; none fails on a number. A candidate that failed attention conformance
earlier in the same run is not timed. Run with ``pytest suites/bench_attention.py --fmspec-bench``
(one process, no xdist).

GPU
---
bf16, H = 16, D = 64, T in {1k, 2k, 4k, 8k, 16k}, B = min(4, 16384 / T) (16k tokens, at most 4 sequences);
forward only (``torch.no_grad``). Families: the five sparse patterns with fixed, GPU-sized arguments

=================  =====================================================  ==========================
pattern            arguments (``GPU_ARGS``)                               keys per query W
=================  =====================================================  ==========================
sliding_window     window = 256                                           511
longformer         window = 256, 16 global tokens (0..15)                 511 + 16, 16 dense rows
bigbird            block 64, r = 3, w = 3, g = 2, seed 0 (Zaheer et al.)  64·8 = 512, 128 dense rows
strided (causal)   stride = 128                                           128 + (T - 1) // 128
fixed (causal)     stride = 128, c = 16                                   128 + 16·ceil(T / 128)
=================  =====================================================  ==========================

and linear attention (``linear(q, k, v)``, elu + 1 features, F = D; ``linear_causal`` with prefix sums).
Each point times, on the same inputs (``fmspec/gpu_bench.py``: CUDA events, L2 flushed, median and
p20/p80 of the repetitions; the first call, which compiles, outside the timing):

- the candidate: ``sparse(q, k, v, pattern, **args)`` or ``linear(q, k, v, causal=...)``;
- ``sdpa_flash``: dense torch SDPA, flash backend, no mask (``is_causal`` for the causal patterns and
  ``linear_causal``): the full attention a sparse pattern replaces;
- ``flex`` (sparse patterns): FlexAttention with the same mask, the block mask built once by torch's own
  ``create_block_mask`` from the pattern's mask_mod (``reference/attention/flex.py``) outside the timing,
  run through the same compiled ``flex_attention`` call (``flex.attend``). Against the reference, the ratio
  is the cost of everything around the kernel (argument checks, the cached block mask, the dispatch).

Cost model (effective work, what the sparse pattern needs, not what a kernel computes):

    sparse          FLOPs 4·B·H·T·W·D          (W as above)
    linear          FLOPs 4·B·H·T·D·D          (φ(K)ᵀV and φ(Q)·S, F = Dv = D; causal the same)
    sdpa_flash      FLOPs 4·B·H·T²·D           (causal: half), recorded as ``sdpa_flash_tflops``
    bytes (fewest)  q, k, v read and o written: 4·B·H·T·D·2

FlexAttention computes whole 128 x 128 tiles: a pattern whose visible entries fall in every tile below
the diagonal (strided, fixed) costs it as much as causal attention, whatever W is. Each point records the
times, TFLOP/s, the fraction of the measured bf16 matmul ceiling (``gb.ceilings``) and the speedups
against ``sdpa_flash`` and ``flex``; ``test_gpu_crossing[family]`` then records, over T, the ratios to
both and the crossing T from which the candidate stays faster than dense. Run on a CUDA machine with
``pytest suites/test_attention.py suites/test_attention_fast.py suites/bench_attention.py --fmspec-bench
-m "not bench or gpu"`` (conformance first, CPU benchmarks left out); ``benchmarks/run_gpu_attention.sh``
does that and renders :func:`gpu_table`. ``test_gpu_point_on_cpu`` runs one tiny point of every family
through the same code on the CPU, untimed, so that the GPU run cannot die on a typo.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from typing import Callable

import pytest
import torch

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb
from fmspec.suites import memory as mem
from fmspec.suites import strategies as ss

pytestmark = [pytest.mark.component("attention"), pytest.mark.bench]

SDP = "attention.scaled_dot_product"
SPARSE = "attention.sparse"
B, H, D = 1, 2, 32
DTYPE = torch.float32
SEQS = [256, 512, 1024, 2048, 4096, 8192]
FIT_FROM = 1024  # below this, fixed per-call costs dominate the time
PATTERNS = ["sliding_window", "longformer", "bigbird", "strided", "fixed"]
LINEAR = {"sliding_window", "longformer", "bigbird"}  # W constant in T: O(T); the others O(T^1.5)
_RESULTS: dict[tuple[str, str, int], dict] = {}  # (candidate, "dense" or pattern, T) -> seconds, elements


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pattern_args(pattern: str, t: int) -> dict:
    stride = max(1, round(math.sqrt(t)))
    return {
        "sliding_window": {"window": 32},
        "longformer": {"window": 32, "global_idx": [0, 1]},
        "bigbird": {"block": 16, "n_random": 2, "n_window": 3, "n_global": 2, "seed": 0},
        "strided": {"stride": stride},
        "fixed": {"stride": stride, "c": 2},
    }[pattern]


def keys_per_query(pattern: str, t: int, args: dict | None = None) -> int:
    """W of the cost model (the widest row of the ordinary, non-global queries); ``args`` default to the
    CPU grid's ``pattern_args(pattern, t)``."""
    a = pattern_args(pattern, t) if args is None else args
    if pattern == "sliding_window":
        return 2 * a["window"] - 1
    if pattern == "longformer":
        return 2 * a["window"] - 1 + len(a["global_idx"])
    if pattern == "bigbird":
        return a["block"] * (a["n_window"] + a["n_global"] + a["n_random"])
    if pattern == "strided":
        return a["stride"] + (t - 1) // a["stride"]
    return a["stride"] + a["c"] * -(-t // a["stride"])  # fixed


def rounds_for(t: int) -> int:
    return 10 if t <= 1024 else 5 if t <= 2048 else 3 if t <= 4096 else 2


def inputs(t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return ss.qkv(B, H, t, t, D, seed=t, dtype=DTYPE)


def largest_allocation(fn) -> tuple[int, str, list[int]]:
    """The largest allocation of one call: (elements, op, shape)."""
    with torch.no_grad():
        with mem.LargestAllocation() as probe:
            fn()
    return probe.numel, str(probe.op), list(probe.shape or ())


def measure(benchmark, candidate, fn, t: int) -> tuple[float, tuple[int, str, list[int]]]:
    """Largest allocation of one call (which is also the warm-up; in the candidate's process when it runs
    isolated), then the median time of a few rounds."""
    probe = bu.run_there(candidate, functools.partial(largest_allocation, fn))
    with torch.no_grad():
        bu.pedantic(benchmark, candidate, fn, rounds=rounds_for(t), iterations=1, warmup_rounds=0)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: one timed call of our own
        start = time.perf_counter()
        with torch.no_grad():
            fn()
        return time.perf_counter() - start, probe
    return stats.stats.median, probe


def common(t: int, seconds: float, probe: tuple[int, str, list[int]], flops: float, conformance: str) -> dict:
    return {"B": B, "H": H, "T": t, "D": D, "dtype": "float32", "seconds": seconds,
            "gflop_per_s": flops / seconds / 1e9, "model_flops": flops,
            "largest_elements": probe[0], "largest_mb_float32": probe[0] * 4 / 1e6,
            "largest_op": probe[1], "largest_shape": probe[2],
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "conformance": conformance}


# ------------------------------------------------------------------------------------------------ timings
@pytest.mark.needs(SDP)
@pytest.mark.parametrize("t", SEQS, ids=lambda t: f"T{t}")
def test_dense_time_and_memory(candidate, benchmark, fmspec_metrics, request, t):
    """scaled_dot_product(q, k, v), no mask: time and largest allocation (model: B·H·T² elements)."""
    conformance = bu.require_conformance(request, "attention", candidate.name)
    q, k, v = inputs(t)
    benchmark.group = f"attention-T{t}"
    seconds, probe = measure(benchmark, candidate, lambda: candidate.attention.scaled_dot_product(q, k, v), t)
    _RESULTS[(candidate.name, "dense", t)] = {"seconds": seconds, "elements": probe[0]}
    bu.record(benchmark, fmspec_metrics, {"impl": "dense", **common(t, seconds, probe, 4 * B * H * t * t * D, conformance),
                                       "model_elements": B * H * t * t})


@pytest.mark.needs(SPARSE)
@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("t", SEQS, ids=lambda t: f"T{t}")
def test_sparse_time_and_memory(candidate, benchmark, fmspec_metrics, request, t, pattern):
    """sparse(q, k, v, pattern, **args): time and largest allocation (model: B·H·T·W, or ·D if gathered)."""
    conformance = bu.require_conformance(request, "attention", candidate.name)
    q, k, v = inputs(t)
    args = pattern_args(pattern, t)
    w = keys_per_query(pattern, t)
    benchmark.group = f"attention-T{t}"
    seconds, probe = measure(benchmark, candidate, lambda: candidate.attention.sparse(q, k, v, pattern, **args), t)
    _RESULTS[(candidate.name, pattern, t)] = {"seconds": seconds, "elements": probe[0]}
    bu.record(benchmark, fmspec_metrics, {
        "impl": pattern, "pattern_args": {k_: v_ for k_, v_ in args.items()}, "keys_per_query": w,
        **common(t, seconds, probe, 4 * B * H * t * w * D, conformance),
        "model_elements_scores": B * H * t * w, "model_elements_gathered": B * H * t * w * D,
    })


# ------------------------------------------------------------------------------------- scaling, crossing
def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-12)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def crossing(seqs: list[int], ours: dict, dense: dict, key: str) -> int | None:
    """Smallest T of the grid from which ``ours`` stays below dense at every larger T (None: never)."""
    below = None
    for t in reversed(seqs):
        if ours[t][key] < dense[t][key]:
            below = t
        else:
            break
    return below


@pytest.mark.needs(SDP, SPARSE)
@pytest.mark.parametrize("pattern", PATTERNS)
def test_scaling(candidate, fmspec_metrics, pattern):
    """Exponent of time and memory in T (log-log fit over T >= 1024), doubling ratios, crossing below dense."""
    name = candidate.name
    seqs = [t for t in SEQS if (name, pattern, t) in _RESULTS and (name, "dense", t) in _RESULTS]
    if len(seqs) < 2:
        pytest.skip("needs the timings of test_dense_time_and_memory and test_sparse_time_and_memory in this run")
    ours = {t: _RESULTS[(name, pattern, t)] for t in seqs}
    dense = {t: _RESULTS[(name, "dense", t)] for t in seqs}
    fit = [t for t in seqs if t >= FIT_FROM] or seqs
    pairs = list(zip(seqs, seqs[1:]))
    fmspec_metrics.update({
        "impl": pattern, "seqs": seqs, "fit_over": fit,
        "expected_exponent": 1.0 if pattern in LINEAR else 1.5,
        "time_exponent": round(slope(fit, [ours[t]["seconds"] for t in fit]), 3),
        "memory_exponent": round(slope(fit, [ours[t]["elements"] for t in fit]), 3),
        "dense_time_exponent": round(slope(fit, [dense[t]["seconds"] for t in fit]), 3),
        "dense_memory_exponent": round(slope(fit, [dense[t]["elements"] for t in fit]), 3),
        "time_ratio_per_doubling": {f"{a}->{b}": round(ours[b]["seconds"] / ours[a]["seconds"], 3) for a, b in pairs},
        "memory_ratio_per_doubling": {f"{a}->{b}": round(ours[b]["elements"] / ours[a]["elements"], 3) for a, b in pairs},
        "time_over_dense": {str(t): round(ours[t]["seconds"] / dense[t]["seconds"], 3) for t in seqs},
        "memory_over_dense": {str(t): round(ours[t]["elements"] / dense[t]["elements"], 3) for t in seqs},
        "time_crossing_T": crossing(seqs, ours, dense, "seconds"),
        "memory_crossing_T": crossing(seqs, ours, dense, "elements"),
        "model_memory_crossing_T_gathered": keys_per_query(pattern, seqs[-1]) * D,
    })


# ================================================================================================ GPU
GPU_H, GPU_D = 16, 64
GPU_SEQS = [1024, 2048, 4096, 8192, 16384]
GPU_TOKENS = 16384
GPU_ARGS = {
    "sliding_window": {"window": 256},
    "longformer": {"window": 256, "global_idx": list(range(16))},
    "bigbird": {"block": 64, "n_random": 3, "n_window": 3, "n_global": 2, "seed": 0},
    "strided": {"stride": 128},
    "fixed": {"stride": 128, "c": 16},
}
CAUSAL = {"strided", "fixed", "linear_causal"}  # timed against causal dense attention
GPU_FAMILIES = PATTERNS + ["linear", "linear_causal"]
_GPU: dict[tuple[str, str, int], dict] = {}  # (candidate, family, T) -> the point's record
_DENSE: dict[tuple, gb.Timing | None] = {}  # (device, B, T, causal) -> sdpa_flash, shared by candidates
Timer = Callable[[Callable[[], object]], gb.Timing]


def gpu_batch(t: int) -> int:
    return max(1, min(4, GPU_TOKENS // t))


def device_timer(fn: Callable[[], object]) -> gb.Timing:
    """``gb.time_ms`` of ``fn`` under ``no_grad``, after one untimed call (compilation, autotuning)."""
    def run():
        with torch.no_grad():
            fn()
    run()
    torch.cuda.synchronize()
    return gb.time_ms(run)


def untimed(fn: Callable[[], object]) -> gb.Timing:
    """One call, a unit timing: the CPU check of the code path (no number of it is a measurement)."""
    def run():
        with torch.no_grad():
            fn()
    return gb.dry_time(run)


def sdpa_flash(q, k, v, causal: bool):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)


def flex_baseline(pattern: str, q, k, v, compiled: bool = True) -> Callable[[], object]:
    """FlexAttention with the pattern's mask: torch's ``create_block_mask`` over the reference's mask_mod
    (built here, outside the timing), through the compiled ``flex.attend`` (eager where not ``compiled``)."""
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    from fmspec.reference.attention import flex  # the mask's definition and the compiled call, never an answer

    t, d = q.shape[-2], q.shape[-1]
    bm = create_block_mask(flex.mask_mod(pattern, t, q.device, **GPU_ARGS[pattern]), None, None, t, t, device=q.device)
    if compiled:
        return lambda: flex.attend(q, k, v, bm, d ** -0.5)
    return lambda: flex_attention(q, k, v, block_mask=bm, scale=d ** -0.5)


def gpu_cost(family: str, b: int, h: int, t: int, d: int, elem_bytes: int) -> tuple[gb.Cost, int | None]:
    """The family's cost model (see the module docstring) and its W (None for linear attention)."""
    io = 4 * b * h * t * d * elem_bytes
    if family in GPU_ARGS:
        w = keys_per_query(family, t, GPU_ARGS[family])
        return gb.Cost(4 * b * h * t * w * d, io, "4·B·H·T·W·D; bytes: q, k, v read, o written"), w
    return gb.Cost(4 * b * h * t * d * d, io, "4·B·H·T·D² (F = Dv = D); bytes: q, k, v read, o written"), None


def gpu_point(candidate, family: str, t: int, b: int, h: int, d: int, dtype: torch.dtype, device: str,
              timer: Timer, ceiling: dict, compiled: bool = True) -> tuple[dict, gb.Timing]:
    """Time one (family, T) point: the candidate, dense SDPA (flash) and FlexAttention with the same mask;
    every number of the record and the candidate's timing (``timer`` and ``ceiling`` are the device's, or
    stand-ins on the CPU)."""
    q, k, v = ss.qkv(b, h, t, t, d, seed=t, dtype=dtype, device=device)
    causal = family in CAUSAL
    if family in GPU_ARGS:
        args = GPU_ARGS[family]
        ours = lambda: candidate.attention.sparse(q, k, v, family, **args)  # noqa: E731
        flex_fn = flex_baseline(family, q, k, v, compiled)
    else:
        ours = lambda: candidate.attention.linear(q, k, v, causal=causal)  # noqa: E731
        flex_fn = None
    timing = timer(ours)
    key = (device, b, t, causal)
    if key not in _DENSE:
        try:
            _DENSE[key] = gb.numbers(timer(lambda: sdpa_flash(q, k, v, causal)))
        except RuntimeError:  # no flash backend for this device or dtype
            _DENSE[key] = None
    dense = _DENSE[key]
    flex_timing = timer(flex_fn) if flex_fn is not None else None
    cost, w = gpu_cost(family, b, h, t, d, q.element_size())
    values = gb.summary(timing, cost, ceiling, {"sdpa_flash": dense, "flex": flex_timing})
    dense_flops = 4 * b * h * t * t * d * (0.5 if causal else 1.0)
    values.update({
        "impl": family, "B": b, "H": h, "T": t, "D": d, "dtype": str(dtype).removeprefix("torch."), "causal": causal,
        "pattern_args": GPU_ARGS.get(family), "keys_per_query": w,
        "sdpa_flash_tflops": dense_flops / (dense.median_ms * 1e-3) / 1e12 if dense else None,
        "flex_tflops": cost.flops / (flex_timing.median_ms * 1e-3) / 1e12 if flex_timing else None,
    })
    return values, timing


@pytest.mark.gpu
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("t", GPU_SEQS, ids=lambda t: f"T{t}")
@pytest.mark.parametrize("family", [
    pytest.param(f, marks=pytest.mark.needs(SPARSE if f in GPU_ARGS else "attention.linear"), id=f) for f in GPU_FAMILIES])
def test_gpu_time(candidate, device, dtype, family, t, benchmark, fmspec_metrics, request):
    """One (family, T) point on the GPU: candidate, dense SDPA (flash) and FlexAttention, device-timed."""
    conformance = bu.require_conformance(request, "attention", candidate.name)
    values, timing = gpu_point(candidate, family, t, gpu_batch(t), GPU_H, GPU_D, dtype, device, device_timer,
                               gb.ceilings(device, dtype))
    values["conformance"] = conformance
    _GPU[(candidate.name, family, t)] = values
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)


@pytest.mark.gpu
@pytest.mark.parametrize("family", GPU_FAMILIES)
def test_gpu_crossing(candidate, family, fmspec_metrics):
    """Over T: time over dense SDPA (flash) and over FlexAttention, and the crossing T from which the
    candidate stays faster than dense."""
    seqs = [t for t in GPU_SEQS if (candidate.name, family, t) in _GPU]
    if not seqs:
        pytest.skip("needs the timings of test_gpu_time in this run")
    pts = {t: _GPU[(candidate.name, family, t)] for t in seqs}
    ours = {t: {"ms": p["median_ms"]} for t, p in pts.items()}
    dense = {t: {"ms": p["sdpa_flash_ms"] if p["sdpa_flash_ms"] is not None else math.inf} for t, p in pts.items()}
    fmspec_metrics.update({
        "impl": family, "seqs": seqs,
        "time_over_sdpa_flash": {str(t): round(p["median_ms"] / p["sdpa_flash_ms"], 3) if p["sdpa_flash_ms"] else None
                                 for t, p in pts.items()},
        "time_over_flex": {str(t): round(p["median_ms"] / p["flex_ms"], 3) if p["flex_ms"] else None
                           for t, p in pts.items()},
        "crossing_T_vs_sdpa_flash": crossing(seqs, ours, dense, "ms"),
        "time_exponent": round(slope(seqs, [p["median_ms"] / p["B"] for p in pts.values()]), 3) if len(seqs) > 1 else None,
    })


@pytest.mark.needs(SPARSE, "attention.linear")
@pytest.mark.parametrize("family", GPU_FAMILIES)
def test_gpu_point_on_cpu(candidate, family):
    """The GPU point's code on the CPU, once, untimed and tiny (T = 256, H = 2, D = 16, float32, eager
    FlexAttention): every key of the record and the table's row are there."""
    values, _ = gpu_point(candidate, family, 256, 1, 2, 16, torch.float32, "cpu", untimed,
                          {"matmul_tflops": 1.0, "copy_gbps": 1.0}, compiled=False)
    for name in ("median_ms", "p20_ms", "p80_ms", "tflops", "fraction_of_matmul_ceiling", "sdpa_flash_ms",
                 "speedup_vs_sdpa_flash", "flex_ms", "speedup_vs_flex", "keys_per_query", "causal"):
        assert name in values, f"{name} missing from the record of {family}"
    doc = {"environment": {"device": "cpu"}, "tests": [
        {"property": "test_gpu_time", "candidate": candidate.name, "metrics": values},
        {"property": "test_gpu_crossing", "candidate": candidate.name,
         "metrics": {"impl": family, "crossing_T_vs_sdpa_flash": None}}]}
    table = gpu_table(doc)
    assert f"| {candidate.name} | {family} | 256 |" in table, table


# ------------------------------------------------------------------------------------------------ table
def gpu_table(doc: dict) -> str:
    """Markdown: one row per (candidate, family, T) of ``test_gpu_time``, then the crossing points."""
    env = doc.get("environment", {})
    tests = [t for t in doc.get("tests", []) if t.get("metrics")]
    points = sorted((t for t in tests if t.get("property") == "test_gpu_time"),
                    key=lambda t: (t["candidate"], GPU_FAMILIES.index(t["metrics"]["impl"]), t["metrics"]["T"]))

    def ms(x):
        return f"{x:.3f}" if x is not None else "n/a"

    def ratio(x):
        return f"{x:.2f}" if x is not None else "n/a"

    lines = [f"Device: {env.get('device')}; torch {env.get('torch')}, triton {env.get('triton')}. bf16, H = 16, "
             "D = 64, B = min(4, 16384 / T), forward. TFLOP/s by the cost model of suites/bench_attention.py "
             "(sparse 4·B·H·T·W·D, linear 4·B·H·T·D², SDPA 4·B·H·T²·D, causal half); device-timed medians "
             "(p20-p80 in ms).", "",
             "| candidate | family | T | B | W | ms (p20-p80) | TFLOP/s | of matmul ceiling | SDPA flash ms "
             "| x SDPA flash | FlexAttention ms | x FlexAttention |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in points:
        m = t["metrics"]
        lines.append(f"| {t['candidate']} | {m['impl']} | {m['T']} | {m['B']} | {m['keys_per_query'] or '-'} | "
                     f"{m['median_ms']:.3f} ({m['p20_ms']:.3f}-{m['p80_ms']:.3f}) | {m['tflops']:.1f} | "
                     f"{m['fraction_of_matmul_ceiling']:.3f} | {ms(m['sdpa_flash_ms'])} | "
                     f"{ratio(m['speedup_vs_sdpa_flash'])} | "
                     f"{ms(m['flex_ms'])} | {ratio(m['speedup_vs_flex'])} |")
    crossings = [t for t in tests if t.get("property") == "test_gpu_crossing"]
    if crossings:
        lines += ["", "| candidate | family | faster than SDPA flash from T |", "| --- | --- | --- |"]
        for t in crossings:
            m = t["metrics"]
            lines.append(f"| {t['candidate']} | {m['impl']} | {m.get('crossing_T_vs_sdpa_flash') or 'never'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m fmspec.suites.bench_attention RESULTS.json > table.md
    with open(sys.argv[1], encoding="utf-8") as f:
        print(gpu_table(json.load(f)), end="")
