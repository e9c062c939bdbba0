"""attention benchmarks (CPU): dense attention against each efficient sparse form, over the sequence length.

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
"""

from __future__ import annotations

import math
import os
import time

import pytest
import torch

from fmspec import benchutil as bu
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


def keys_per_query(pattern: str, t: int) -> int:
    """W of the cost model (the widest row of the ordinary, non-global queries)."""
    a = pattern_args(pattern, t)
    if pattern == "sliding_window":
        return 2 * a["window"] - 1
    if pattern == "longformer":
        return 2 * a["window"] - 1 + len(a["global_idx"])
    if pattern == "bigbird":
        return a["block"] * (a["n_window"] + a["n_global"] + a["n_random"])
    if pattern == "strided":
        return a["stride"] + (t - 1) // a["stride"]
    return a["stride"] + a["c"] * -(-t // a["stride"])


def rounds_for(t: int) -> int:
    return 10 if t <= 1024 else 5 if t <= 2048 else 3 if t <= 4096 else 2


def inputs(t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return ss.qkv(B, H, t, t, D, seed=t, dtype=DTYPE)


def measure(benchmark, fn, t: int) -> tuple[float, mem.LargestAllocation]:
    """Largest allocation of one call (which is also the warm-up), then the median time of a few rounds."""
    with torch.no_grad():
        with mem.LargestAllocation() as probe:
            fn()
        benchmark.pedantic(fn, rounds=rounds_for(t), iterations=1, warmup_rounds=0)
    stats = getattr(benchmark, "stats", None)
    if stats is None:  # --benchmark-disable: one timed call of our own
        start = time.perf_counter()
        with torch.no_grad():
            fn()
        return time.perf_counter() - start, probe
    return stats.stats.median, probe


def common(t: int, seconds: float, probe: mem.LargestAllocation, flops: float, conformance: str) -> dict:
    return {"B": B, "H": H, "T": t, "D": D, "dtype": "float32", "seconds": seconds,
            "gflop_per_s": flops / seconds / 1e9, "model_flops": flops,
            "largest_elements": probe.numel, "largest_mb_float32": probe.numel * 4 / 1e6,
            "largest_op": str(probe.op), "largest_shape": list(probe.shape or ()),
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "conformance": conformance}


# ------------------------------------------------------------------------------------------------ timings
@pytest.mark.needs(SDP)
@pytest.mark.parametrize("t", SEQS, ids=lambda t: f"T{t}")
def test_dense_time_and_memory(candidate, benchmark, fmspec_metrics, request, t):
    """scaled_dot_product(q, k, v), no mask: time and largest allocation (model: B·H·T² elements)."""
    conformance = bu.require_conformance(request, "attention", candidate.name)
    q, k, v = inputs(t)
    benchmark.group = f"attention-T{t}"
    seconds, probe = measure(benchmark, lambda: candidate.attention.scaled_dot_product(q, k, v), t)
    _RESULTS[(candidate.name, "dense", t)] = {"seconds": seconds, "elements": probe.numel}
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
    seconds, probe = measure(benchmark, lambda: candidate.attention.sparse(q, k, v, pattern, **args), t)
    _RESULTS[(candidate.name, pattern, t)] = {"seconds": seconds, "elements": probe.numel}
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
