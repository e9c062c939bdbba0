"""From pytest's reports to the results file (reports/schema.py): one record per test, the environment,
the run's settings, pytest-benchmark's records. Registered by the plugin on the xdist controller (or the
only process) when a results file is wanted."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shlex
import socket
import subprocess
from pathlib import Path

import pytest

from fmspec.reports import schema
from fmspec.reports.schema import ResultsWriter
from fmspec import integrity, loader


def environment() -> dict:
    """Where the run happened: enough to tell whether two results files are comparable."""
    import torch

    device = "cpu"
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "device": device,
        "cpu_count": os.cpu_count(),
        "commit": _git_commit(),
        "hostname": socket.gethostname(),
    }


def run_info(config: pytest.Config) -> dict:
    from fmspec import profiles

    hidden = config.getoption("fmspec_hidden_seed") is not None
    args = list(config.invocation_params.args)
    for i, arg in enumerate(args):  # the seed stays with whoever chose it
        if arg == "--fmspec-hidden-seed" and i + 1 < len(args):
            args[i + 1] = "<hidden>"
        elif arg.startswith("--fmspec-hidden-seed="):
            args[i] = "--fmspec-hidden-seed=<hidden>"
    return {
        "fmspec": _version("fmspec"),
        "args": shlex.join(args),
        "profile": profiles.current(),
        "seed": "hidden" if hidden else config.getoption("hypothesis_seed", None),
        "seed_id": integrity.seed_id(config.getoption("fmspec_hidden_seed")) if hidden else None,
        "bench": bool(config.getoption("fmspec_bench")),
    }


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class Recorder:
    """Turns test and benchmark reports into the results file (on the xdist controller only)."""

    def __init__(self, config: pytest.Config, writer: ResultsWriter, candidates: list[loader.Candidate],
                 specs: dict[str, str]):
        self.config = config
        self.writer = writer
        self.candidates = candidates
        self.specs = specs  # candidate name -> the --candidate text that loads it
        self.pending: dict[str, dict] = {}
        self.absent: dict[tuple[str, str], list[str]] = {}  # (candidate, nodeid) -> features a missing test lacks

    def start(self) -> None:
        """Open the results file: called once, when the run becomes an fmspec run."""
        candidates = [c.identity() for c in self.candidates]
        self.writer.start(environment(), run_info(self.config), candidates)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        info = getattr(report, "fmspec", None)
        crashed = report.when not in ("setup", "call", "teardown")  # xdist: the worker died in this test
        if info is None:
            if not crashed:
                return
            info = self.crash_info(report.nodeid)
            report.longrepr = f"{report.longrepr} (the process died: segfault, os._exit, a signal or the OOM killer)"
        rec = self.pending.setdefault(report.nodeid, {
            "nodeid": report.nodeid, "candidate": info["candidate"], "component": info["component"],
            "features": info["features"], "property": info["property"], "params": info["params"],
            "outcome": None, "duration": 0.0, "message": None, "example": None, "reproduce": None,
            "metrics": None, "flags": [],
        })
        rec["flags"] += [f for f in info.get("flags", []) if f not in rec["flags"]]
        if info.get("absent"):
            self.absent[(info["candidate"], report.nodeid)] = info["absent"]
        rec["duration"] = round(rec["duration"] + report.duration, 6)
        outcome = _outcome(report, info)
        if outcome is not None and (rec["outcome"] in (None, "passed") or outcome == "error"):
            rec["outcome"] = outcome
            if outcome != "passed":
                rec["message"] = _message(report)
            if info.get("example"):
                rec["example"] = info["example"]
            if outcome in ("failed", "error"):
                rec["reproduce"] = self.reproduce(report.nodeid, info["candidate"])
        if info.get("metrics"):
            rec["metrics"] = info["metrics"]
        if info.get("benchmark"):
            self.writer.add_benchmark(info["benchmark"])
        if report.when == "teardown" or crashed:
            del self.pending[report.nodeid]
            rec["outcome"] = rec["outcome"] or "error"
            self.writer.add_test(rec)

    def crash_info(self, nodeid: str) -> dict:
        """What a crashed test's node id tells: module -> component, first parameter -> candidate."""
        path, _, rest = nodeid.partition("::")
        name, _, params = rest.partition("[")
        known = sorted(self.specs, key=len, reverse=True)
        cand = next((c for c in known if params == c + "]" or params.startswith(c + "-")), None)
        component = Path(path).stem.removeprefix("test_").removeprefix("bench_")
        return {"candidate": cand, "component": component, "features": [], "property": name, "params": {}}

    def reproduce(self, nodeid: str, candidate: str | None) -> str:
        """A command that reruns one test; its results go beside this run's file, never over it."""
        beside = self.writer.path.with_name(f"{self.writer.path.stem}-reproduce.json")
        parts = ["pytest", nodeid, "--fmspec-results", str(beside)]
        if candidate:
            parts += ["--candidate", self.specs.get(candidate, candidate)]
        profile = self.config.getoption("hypothesis_profile", None)
        if profile:
            parts += ["--hypothesis-profile", profile]
        seed = self.config.getoption("hypothesis_seed", None)
        if seed is not None:
            parts += ["--hypothesis-seed", str(seed)]
        return shlex.join(parts)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for rec in self.pending.values():  # tests cut off mid-way
            rec["outcome"] = rec["outcome"] or "error"
            self.writer.add_test(rec)
        self.pending.clear()
        # an internal error (pytest's own, or a timeout firing while pytest formats a failure) ends the run
        # as early as Ctrl-C does: the tests after it never ran
        stopped = (pytest.ExitCode.INTERRUPTED, pytest.ExitCode.INTERNAL_ERROR)
        status = "interrupted" if exitstatus in stopped or session.shouldstop else "complete"
        self.writer.finish(status)

    def pytest_terminal_summary(self, terminalreporter, exitstatus: int, config: pytest.Config) -> None:
        summary = self.writer.doc["summary"]
        broken = {c.name: c.error for c in self.candidates if c.error}
        verbose = config.getoption("verbose") > 0
        if summary or broken:
            terminalreporter.section("fmspec")
        for cand, comps in summary.items():
            if cand in broken:
                count = sum(n for counts in comps.values() for n in counts.values())
                terminalreporter.write_line(f"{cand:<16} not run ({count} tests): could not be imported: {broken[cand]}",
                                            red=True)
                continue
            for comp, counts in comps.items():
                shown = ", ".join(f"{n} {o}" for o, n in counts.items())
                terminalreporter.write_line(f"{cand:<16} {comp:<12} {shown}")
        tests = [t for t in self.writer.doc["tests"] if t["candidate"] not in broken]
        for cand in sorted({c for c, _ in self.absent} - set(broken)):
            missing = {t["nodeid"] for t in tests if t["candidate"] == cand and t["outcome"] == "missing"}
            needs = [set(features) for (c, nodeid), features in self.absent.items() if c == cand and nodeid in missing]
            plan = next_features(needs)
            if plan:
                shown = plan[: None if verbose else 8]
                terminalreporter.write_line(f"{cand}: implement next (missing tests each unlocks, in this order; "
                                            f"{sum(n for _, n in plan)} in all):")
                terminalreporter.write_line("  " + ", ".join(f"{f} ({n})" for f, n in shown)
                                            + ("" if len(shown) == len(plan) else f", ... {len(plan) - len(shown)} more (-v)"))
        failed = [t for t in tests if t["outcome"] in ("failed", "error") and t.get("reproduce")]
        if failed:
            terminalreporter.write_line("reproduce a failure:")
            for t in failed[: None if verbose else 10]:
                terminalreporter.write_line(f"  {t['reproduce']}")
            if not verbose and len(failed) > 10:
                terminalreporter.write_line(f"  ... {len(failed) - 10} more (-v for all; each also in the results file)")
        terminalreporter.write_line(f"fmspec results: {self.writer.path}")


def _outcome(report: pytest.TestReport, info: dict) -> str | None:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.skipped and info.get("kind") == "not run":
        return "failed"  # the candidate could not be imported: its tests fail with that error
    if report.skipped:
        return info.get("kind") or "skipped"
    if report.failed:
        return "error" if report.when in ("setup", "teardown") else "failed"
    return "passed" if report.when == "call" else None


def _message(report: pytest.TestReport) -> str | None:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = report.longreprtext
    if not text:
        return None
    crash = getattr(report.longrepr, "reprcrash", None)
    head = crash.message[:1000] if crash is not None else ""
    tail = text[-3000:]
    return (head + "\n\n" + tail).strip() if head and head not in tail else tail


def next_features(needs: list[set[str]]) -> list[tuple[str, int]]:
    """The features to implement, in order, each with the number of missing tests it unlocks: a greedy
    cover (each step takes the feature that completes the most tests, ties to the one most tests need), so
    the first few entries are the smallest set that unlocks the most tests.

    >>> next_features([{"a"}, {"a"}, {"a", "b"}, {"c"}])
    [('a', 2), ('b', 1), ('c', 1)]
    """
    from collections import Counter

    left = [set(n) for n in needs if n]  # the features each missing test still lacks
    plan = []
    while left:
        completes = Counter(next(iter(n)) for n in left if len(n) == 1)  # tests that one feature completes
        wanted = Counter(f for n in left for f in n)
        best = min(wanted, key=lambda f: (-completes[f], -wanted[f], f))
        plan.append((best, completes[best]))
        for n in left:
            n.discard(best)
        left = [n for n in left if n]
    return plan
