"""collectives benchmark: AllReduce's bus bandwidth over the message size; the candidate's ring
``all_reduce`` against its ``naive_all_reduce`` and torch.distributed's own ``all_reduce`` on the same
backend and processes (the suite's pool: gloo on the CPU, or nccl with a GPU per rank; see
suites/_collectives_helpers.py). On several GPUs, ``benchmarks/collectives_gpu.py`` measures up to 1 GB
and DDP's step time as well.

Cost model (nccl-tests' convention, its PERFORMANCE.md): an all-reduce of S bytes on N ranks must send,
from each rank, 2(N-1)/N·S bytes (the ring: ReduceScatter then AllGather) and receive as many. With t the
time of one call::

    algbw = S / t                       (what the caller sees)
    busbw = algbw · 2(N-1)/N            (what each rank's link carried, for a bandwidth-optimal algorithm)

so busbw is comparable across N, and with the link's own bandwidth: a bandwidth-optimal all-reduce
approaches it at large S, where per-message latency no longer counts. The naive all-reduce pushes (N-1)·S
through rank 0 (N/2 times the ring's per-rank traffic): its busbw falls as N grows. The records hold the
bytes each rank actually sent (counted by the communicator; not for torch, whose messages bypass it).

Grid: float32, S = 1 KB, 16 KB, 256 KB, 4 MB, 64 MB, 256 MB (1 KB = 1024 bytes); N = 2 and 4 ranks (the
pool's subgroup {0, 1} and a pool of 4 processes; skipped where the pool is smaller); ``ring`` (``collectives.all_reduce``),
``naive`` (``collectives.naive_all_reduce``), ``torch`` (``torch.distributed.all_reduce``, in place on the
caller's tensor, as a user calls it; the contract's functions also copy the input, and check the ranks'
arguments with one small metadata exchange per call).

Time: host clock (``time.perf_counter``) around one call on every rank, each round after a barrier (with
nccl, the device synchronized before and after the call); a round's time is its slowest rank's (a collective ends when its last rank does); the median of the rounds
(10 up to 256 KB, 5 at 4 MB, 3 at 64 MB, 2 at 256 MB) after one warm-up. gloo carries the messages over
TCP on the loopback interface: the "link" is the kernel copying through socket buffers, on the
machine's cores (with 4 ranks on 2 cores, the ranks also wait for each other's turn on a core). Benchmark
tests only record; none fails on a number. A candidate that failed collectives conformance earlier in the
same run is not timed. Run with ``pytest suites/bench_collectives.py --fmspec-bench`` (one process, no xdist).
"""

from __future__ import annotations

import os
import statistics

import pytest

from fmspec import benchutil as bu
from fmspec.suites import _collectives_helpers as ch
from fmspec.suites._collectives_helpers import pool, ranks  # noqa: F401  fixtures

pytestmark = [pytest.mark.component("collectives"), pytest.mark.bench]

SIZES = [2**10, 2**14, 2**18, 2**22, 2**26, 2**28]  # bytes: 1 KB .. 256 MB
WORLDS = [2, 4]
IMPLS = {"ring": "collectives.all_reduce", "naive": "collectives.naive_all_reduce", "torch": None}
BENCH_TIMEOUT = 600.0  # seconds for one size's rounds on every rank (256 MB through rank 0 of 4 is slow)
_RESULTS: dict[tuple[str, str, int, int], dict] = {}  # (candidate, impl, N, bytes) -> record


def rounds_for(nbytes: int) -> int:
    return 10 if nbytes <= 2**18 else 5 if nbytes <= 2**22 else 3 if nbytes <= 2**26 else 2


def label(nbytes: int) -> str:
    return f"{nbytes // 2**20} MB" if nbytes >= 2**20 else f"{nbytes // 2**10} KB"


# the pool and ranks fixtures: _collectives_helpers (shared with the other collectives module)


def _params():
    for impl, feature in IMPLS.items():
        marks = [pytest.mark.needs(feature)] if feature else []
        for world in WORLDS:
            for nbytes in SIZES:
                yield pytest.param(impl, world, nbytes, marks=marks, id=f"{impl}-N{world}-{label(nbytes).replace(' ', '')}")


@pytest.mark.parametrize("impl, world, nbytes", list(_params()))
def test_all_reduce_bus_bandwidth(candidate, ranks, fmspec_metrics, request, impl, world, nbytes):
    """One all-reduce of ``nbytes`` bytes of float32 on ``world`` ranks: time, algbw, busbw (model above)."""
    conformance = bu.require_conformance(request, "collectives", candidate.name)
    rounds = rounds_for(nbytes)
    what = f"{impl} all-reduce of {label(nbytes)} on {world} ranks"
    ch.need_ranks(ranks.pool, world)
    per_rank = [{"spec": ranks.spec, "impl": "torch" if impl == "torch" else IMPLS[impl].rpartition(".")[2],
                 "sizes": [nbytes], "rounds": [rounds]} for _ in range(world)]
    res = ranks.pool.run("bench", per_rank, what=what, timeout=BENCH_TIMEOUT)
    ch.raise_candidate_errors(res, what)
    per_round = [max(r["sizes"][0]["seconds"][i] for r in res) for i in range(rounds)]  # the slowest rank's
    seconds = statistics.median(per_round)
    algbw = nbytes / seconds / 1e9
    record = {
        "impl": impl, "world_size": world, "bytes": nbytes, "size": label(nbytes), "dtype": "float32",
        "backend": ranks.pool.backend, "seconds": seconds, "rounds": rounds, "seconds_rounds": per_round,
        "algbw_gb_per_s": algbw, "busbw_gb_per_s": algbw * 2 * (world - 1) / world,
        "model_bytes_sent_per_rank": 2 * (world - 1) * nbytes // world,
        "bytes_sent_by_rank": None if impl == "torch" else [r["sizes"][0]["bytes_sent_per_call"] for r in res],
        "cpu_count": os.cpu_count(), "conformance": conformance,
    }
    _RESULTS[(candidate.name, impl, world, nbytes)] = record
    bu.record(None, fmspec_metrics, record, digits=9)


@pytest.mark.parametrize("world", WORLDS)
def test_bus_bandwidth_summary(candidate, fmspec_metrics, world):
    """Per size: each implementation's busbw, and the ring's time over torch's and over the naive one's."""
    name = candidate.name
    table = {impl: {n: _RESULTS[(name, impl, world, n)] for n in SIZES if (name, impl, world, n) in _RESULTS}
             for impl in IMPLS}
    if not table["ring"] or not table["torch"]:
        pytest.skip("needs the timings of test_all_reduce_bus_bandwidth in this run")
    sizes = [n for n in SIZES if n in table["ring"]]
    fmspec_metrics.update({
        "world_size": world, "sizes": [label(n) for n in sizes],
        **{f"busbw_gb_per_s_{impl}": {label(n): round(rows[n]["busbw_gb_per_s"], 4) for n in sizes if n in rows}
           for impl, rows in table.items()},
        "ring_time_over_torch": {label(n): round(table["ring"][n]["seconds"] / table["torch"][n]["seconds"], 3)
                                 for n in sizes if n in table["torch"]},
        "ring_time_over_naive": {label(n): round(table["ring"][n]["seconds"] / table["naive"][n]["seconds"], 3)
                                 for n in sizes if n in table["naive"]},
    })
