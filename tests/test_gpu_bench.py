"""The GPU benchmark plumbing, checked on the CPU: pytest-benchmark times the device-timed call itself
(``gpu_bench.pedantic_device_time``), and the results file compares benchmarks by the device timing."""

from __future__ import annotations

import torch

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb
from fmspec.reports import schema

TOY = "import types\ntoy = types.SimpleNamespace(double=lambda x: 2 * x)\n"

BENCH = """
import pytest
import torch

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb

pytestmark = [pytest.mark.component("toy"), pytest.mark.bench]
CALLS = []


def test_device_timed(candidate, benchmark, fmspec_metrics):
    # a device timing of 7 ms (as time_ms would give it on a GPU) of a call that takes microseconds here
    timing = gb.Timing(median_ms=7.0, p20_ms=6.5, p80_ms=7.5, fn=lambda: CALLS.append(candidate.toy.double(1)))
    bu.record(benchmark, fmspec_metrics, gb.summary(timing, gb.Cost(1e6, 1e6, "toy"), gb.DRY_CEILING))
    gb.pedantic_device_time(benchmark, timing)
    assert len(CALLS) == 1 + gb.HOST_ROUNDS  # one warm-up round, then the timed rounds


def test_gradients_reset_before_each_round(candidate, benchmark):
    w = torch.ones(3, requires_grad=True)
    timing = gb.dry_time(lambda: (3 * w).sum().backward(), grad_to_none=[w])
    gb.pedantic_device_time(benchmark, timing)
    assert torch.equal(w.grad, torch.full((3,), 3.0)), w.grad  # one round's gradient, not several summed


def test_host_timed(candidate, benchmark):
    benchmark.pedantic(candidate.toy.double, args=(1,), rounds=3, iterations=1)
"""


def test_device_timed_benchmark_is_compared_by_its_device_median(pytester, monkeypatch):
    """The results file's ``stats`` of a device-timed benchmark are the device median and percentiles (what
    reports compare), pytest-benchmark's host rounds of the same call are kept under ``host``; a benchmark
    without a device timing keeps pytest-benchmark's statistics."""
    pytester.makepyfile(test_bench=BENCH, toy=TOY)
    # inside an xdist worker of the project's own run, pytest-benchmark would see the worker's environment
    # and disable itself: the inner run is a plain one
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    res = pytester.runpytest_subprocess("--candidate", "toy.py", "--fmspec-results", "results.json",
                                        "--fmspec-bench", "-p", "no:cacheprovider")
    res.assert_outcomes(passed=3)
    doc = schema.load(pytester.path / "results.json")
    by_name = {b["name"].split("[")[0]: b for b in doc["benchmarks"]}
    dev = by_name["test_device_timed"]
    assert dev["candidate"] == "toy"
    assert dev["extra_info"][bu.DEVICE_TIME] == {"median_ms": 7.0, "p20_ms": 6.5, "p80_ms": 7.5,
                                                 "timer": "triton.testing.do_bench"}
    assert dev["extra_info"]["median_ms"] == 7.0
    stats = dev["stats"]
    assert (stats["median"], stats["p20"], stats["p80"]) == (7.0e-3, 6.5e-3, 7.5e-3), stats
    host = stats["host"]
    assert host["rounds"] == gb.HOST_ROUNDS and 0 < host["median"] < 7.0e-3, host  # the host clock, not the 7 ms
    plain = by_name["test_host_timed"]["stats"]
    assert plain["rounds"] == 3 and "host" not in plain and plain["median"] < 7.0e-3, plain


def test_timing_keeps_its_call_out_of_the_numbers():
    """``summary`` records numbers only; ``numbers`` drops the call (what a cache keeps); ``dry_time`` keeps it."""
    w = torch.zeros(2, requires_grad=True)
    t = gb.dry_time(lambda: None, grad_to_none=[w])
    assert t.fn is not None and t.grads == (w,)
    assert gb.numbers(t) == t and gb.numbers(t).fn is None and gb.numbers(t).grads == ()
    assert gb.numbers(None) is None
    values = gb.summary(t, gb.Cost(1.0, 1.0, "one"), gb.DRY_CEILING)
    assert {"median_ms", "p20_ms", "p80_ms"} <= values.keys()
    assert not any(callable(v) or isinstance(v, tuple) for v in values.values()), values
