"""What every benchmark module shares, CPU or GPU: time only what passed conformance, record every number.

* :func:`require_conformance` skips a bench whose component failed (or errored) for that candidate
  earlier in the same session;
* :func:`record` puts every number into pytest-benchmark's record (``benchmark.extra_info``, which the
  fmspec results file keeps under ``benchmarks``) and into the ``fmspec_metrics`` dict of the test (kept
  under ``tests[].metrics``).

GPU timing lives in ``gpu_bench.py``; a device-timed benchmark's timing sits in ``extra_info`` under
:data:`DEVICE_TIME`, which the results file's ``stats`` of that benchmark are taken from (``plugin.py``).

**Isolated mode** (``--fmspec-isolate``): benches time through :func:`pedantic` (never
``benchmark.pedantic`` directly). For an isolated candidate it first runs the call once here, through
the candidate's proxies (the checked output), then sends the call to the candidate process
(:class:`fmspec.isolate.Shipped`) and lets pytest-benchmark time each round from here: a round is one
request, run there, its output kept there. The clock is the suite's, so the candidate process cannot report
a time of its own; each round's time includes one round trip, measured on a call that does nothing and
recorded as ``isolated.round_trip_ms``. After a round, and unknown to the candidate when it runs it, the
round's output is fetched with probability :data:`SPOT_CHECK` (the first and the last always) and compared
with the checked output (``asserts.assert_same_result``): a candidate that skips work when timed fails the
benchmark. :func:`shipped` does the same for a bench's own timing loop.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from typing import Any, Callable

import pytest

# extra_info key of a device timing: {"median_ms", "p20_ms", "p80_ms", "timer"} (gpu_bench.pedantic_device_time)
DEVICE_TIME = "device_time"
SPOT_CHECK = 0.25  # isolated mode: the chance that a round's output is fetched and compared (besides first, last)
ROUND_TRIPS = 20  # isolated mode: rounds of a call that does nothing, timed for isolated.round_trip_ms


def require_conformance(request: pytest.FixtureRequest, component: str, candidate_name: str) -> str:
    """Skip unless ``component`` passed its conformance tests for the candidate earlier in this run.

    Returns "passed" or "not run" (a bench run on its own, without the suite: recorded as such). The
    outcomes are the plugin's own tally of this process, whether or not a results file is written;
    benchmarks do not run on pytest-xdist workers, where conformance ran in other processes."""
    from fmspec import plugin

    if hasattr(request.config, "workerinput"):
        pytest.skip("benchmarks run in one process, after conformance: run --fmspec-bench without -n")
    mine = plugin.conformance(request.config, component, candidate_name)
    bad = sorted(prop for prop, outcome in mine.items() if outcome == "failed")
    if bad:
        pytest.skip(f"{candidate_name} failed {component} conformance ({', '.join(bad[:5])}): not timed")
    return "passed" if mine else "not run"


def record(benchmark, metrics: dict, values: dict, digits: int = 6) -> None:
    """Store ``values`` in pytest-benchmark's record (``benchmark.extra_info``) and in the test's fmspec
    metrics; floats rounded to ``digits`` decimals (more for microsecond timings), ``benchmark`` may be None
    (benchmarks disabled)."""
    clean = {k: (round(v, digits) if isinstance(v, float) and math.isfinite(v) else v) for k, v in values.items()}
    if benchmark is not None:
        benchmark.extra_info.update(clean)
    metrics.update(clean)


# -------------------------------------------------------------------------------------------- isolated mode
def pedantic(benchmark, candidate, target: Callable, args: tuple = (), kwargs: dict | None = None,
             setup: Callable | None = None, rounds: int = 1, warmup_rounds: int = 0, iterations: int = 1) -> Any:
    """``benchmark.pedantic(target, ...)`` (pytest-benchmark's), timing the candidate where it runs: in
    process the call itself; for an isolated candidate rounds run in its process, timed from here and
    spot-checked (see the module docstring). Returns the call's output (in isolated mode the checked one)."""
    from fmspec import isolate

    iso = isolate.controller(candidate)
    if iso is None:
        return benchmark.pedantic(target, args=args, kwargs=kwargs, setup=setup, rounds=rounds,
                                  warmup_rounds=warmup_rounds, iterations=iterations)
    kwargs = dict(kwargs or {})
    if setup is not None:
        got = setup()
        expected = target(*got[0], **got[1]) if got is not None else target()
    else:
        expected = target(*args, **kwargs)
    call = isolate.Shipped(iso, target, setup, args, kwargs)
    check = SpotCheck(call, expected, "the timed call's output")
    null = isolate.Shipped(iso, _nothing)
    trips = []
    for _ in range(ROUND_TRIPS if benchmark.enabled else 0):
        start = time.perf_counter()
        null()
        trips.append(time.perf_counter() - start)

    def each_round():
        check.after_round()
        call.setup()
        return (), {}

    if iterations == 1:
        benchmark.pedantic(check.timed, setup=each_round, rounds=rounds, warmup_rounds=warmup_rounds)
    else:  # pytest-benchmark takes no setup with several iterations: the last round is checked
        call.setup()
        benchmark.pedantic(check.timed, rounds=rounds, warmup_rounds=warmup_rounds, iterations=iterations)
    check.after_round(last=True)
    benchmark.extra_info["isolated"] = {"round_trip_ms": round(statistics.median(trips) * 1e3, 4) if trips else None,
                                        "spot_checks": check.checks, "rounds_run": check.rounds}
    return expected


def _nothing() -> None:
    return None


class SpotCheck:
    """After each round of a :class:`fmspec.isolate.Shipped` call: with probability :data:`SPOT_CHECK` (and
    always after the first and the last), fetch that round's output and compare it with the checked one."""

    def __init__(self, call, expected: Any, name: str):
        self.call, self.expected, self.name = call, expected, name
        self.rounds = self.checks = 0
        self.pending = False  # a round ran and was not yet considered
        self.rng = random.SystemRandom()

    def timed(self) -> None:
        """One round, run there: what pytest-benchmark times."""
        self.call()
        self.rounds += 1
        self.pending = True

    def after_round(self, last: bool = False) -> None:
        if not self.pending:
            return
        self.pending = False
        if self.rounds == 1 or last or self.rng.random() < SPOT_CHECK:
            from fmspec.suites import asserts as ah

            self.checks += 1
            ah.assert_same_result(self.call.last(), self.expected, name=self.name,
                                  where=f"timed round {self.rounds}, run in the candidate process, against the checked run")


def shipped(candidate, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` (a bench's timed call, no arguments) as a bench's own timing loop should call it: itself in
    process; in isolated mode run in the candidate process, its output checked against a first run here
    after the first call and then at random (:class:`SpotCheck`)."""
    from fmspec import isolate

    iso = isolate.controller(candidate)
    if iso is None:
        return fn
    expected = fn()
    call = isolate.Shipped(iso, fn)
    check = SpotCheck(call, expected, "the timed call's output")

    def run() -> None:
        check.after_round()
        check.timed()

    return run


def run_there(candidate, fn: Callable[[], Any]) -> Any:
    """``fn()`` where the candidate runs: here in process, in its process when isolated (its output, a
    measurement such as a memory probe around the candidate's call, comes back by value). What the
    candidate process reports of itself is as honest as the candidate."""
    from fmspec import isolate

    iso = isolate.controller(candidate)
    if iso is None:
        return fn()
    call = isolate.Shipped(iso, fn)
    call()
    return call.last()


def require_in_process(candidate) -> None:
    """Skip for an isolated candidate: the CPU check of a GPU bench's code (``test_bench_points_run_on_cpu``)
    runs that code, peers and gradients included, beside the candidate in one process; the GPU bench it
    checks runs in process only (device timing in the candidate's process would be its own word)."""
    from fmspec import isolate

    if isolate.controller(candidate) is not None:
        pytest.skip("the CPU check of a GPU benchmark's code runs in process (GPU benchmarks do not run isolated)")
