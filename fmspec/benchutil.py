"""What every benchmark module shares, CPU or GPU: time only what passed conformance, record every number.

* :func:`require_conformance` skips a bench whose component failed (or errored) for that candidate
  earlier in the same session;
* :func:`record` puts every number into pytest-benchmark's record (``benchmark.extra_info``, which the
  fmspec results file keeps under ``benchmarks``) and into the ``fmspec_metrics`` dict of the test (kept
  under ``tests[].metrics``).

GPU timing lives in ``gpu_bench.py``; a device-timed benchmark's timing sits in ``extra_info`` under
:data:`DEVICE_TIME`, which the results file's ``stats`` of that benchmark are taken from (``plugin.py``).
"""

from __future__ import annotations

import math

import pytest

# extra_info key of a device timing: {"median_ms", "p20_ms", "p80_ms", "timer"} (gpu_bench.pedantic_device_time)
DEVICE_TIME = "device_time"


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
