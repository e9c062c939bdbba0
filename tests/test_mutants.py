"""Every mutant candidate fails its own component's suite, in each test it lists in CAUGHT_BY (and, where
CUDA is available, in CAUGHT_BY_GPU too).

Each mutant runs only the tests it lists (a component's mutants in one process): that is the evidence
docs/mutants.md records, at a fraction of the cost of the whole suite per mutant. Without a GPU, a mutant
that only GPU tests catch is left out.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import torch

from fmspec.candidates import mutants

ROOT = Path(__file__).resolve().parent.parent
BY_COMPONENT: dict[str, list[mutants.Mutant]] = defaultdict(list)
for _m in mutants.discover():
    BY_COMPONENT[_m.component].append(_m)


def suite_modules(component: str) -> list[Path]:
    """suites/test_<component>.py and any suites/test_<component>_<part>.py beside it."""
    suites = ROOT / "suites"
    return sorted([*suites.glob(f"test_{component}.py"), *suites.glob(f"test_{component}_*.py")])


def run_suite(component: str, candidates: list[str], tests: set[str], tmp_path: Path, seed: int | None = None) -> dict:
    """Run the given tests of the component's suite modules on the candidates in a fresh process (the ci
    examples, unshrunk: the ``mutants`` profile; or, with ``seed``, random examples from that seed: the
    hidden profile); the results file."""
    results = tmp_path / f"{component}-{seed}.json"
    profile = ["--hypothesis-profile", "mutants"] if seed is None else ["--fmspec-hidden-seed", str(seed)]
    cmd = [sys.executable, "-m", "pytest", *map(str, suite_modules(component)), "-q", "-p", "no:cacheprovider",
           *profile, "--fmspec-results", str(results), "--rootdir", str(ROOT), "-k", " or ".join(sorted(tests))]
    for spec in candidates:
        cmd += ["--candidate", spec]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert results.exists(), f"no results file; pytest said:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(results.read_text())


@pytest.mark.parametrize("component", sorted(BY_COMPONENT))
def test_every_mutant_is_caught_by_its_component(component, tmp_path):
    cuda = torch.cuda.is_available()
    found = [m for m in BY_COMPONENT[component] if m.expected(cuda)]
    if not found:
        pytest.skip(f"every {component} mutant is caught only by tests that need a GPU")
    pairs = {f"({t} and {m.name})" for m in found for t in m.expected(cuda)}  # each mutant runs only its own tests
    doc = run_suite(component, [str(m.path) for m in found], pairs, tmp_path)
    broken = [f"{c['name']}: {c['error']}" for c in doc["candidates"] if c.get("error")]
    assert not broken, "a mutant that cannot be imported proves nothing:\n" + "\n".join(broken)
    failed = failed_tests(doc)
    problems = []
    for m in found:
        if not failed[m.name]:
            problems.append(f"{m.name}: no test of {component} failed ({m.bug})")
        for test in m.expected(cuda):
            if test not in failed[m.name]:
                listed = "CAUGHT_BY" if test in m.caught_by else "CAUGHT_BY_GPU"
                problems.append(f"{m.name}: {test} is listed in {listed} but passed")
    assert not problems, "\n".join(problems)


def failed_tests(doc: dict) -> dict[str, set[str]]:
    """candidate -> the test functions it failed (or errored in)."""
    failed = defaultdict(set)
    for t in doc["tests"]:
        if t["outcome"] in ("failed", "error"):
            failed[t["candidate"]].add(t["property"])
    return failed


@pytest.mark.parametrize("component", sorted(BY_COMPONENT))
def test_every_mutant_is_caught_under_random_seeds(component, tmp_path, request):
    """The same evidence under random examples (``--mutant-seeds 1,2,3``): a mutant a listed test catches
    under some seeds only is caught by luck of the draw, and is reported with the seeds that missed it."""
    seeds = [int(s) for s in request.config.getoption("--mutant-seeds").split(",") if s.strip()]
    if not seeds:
        pytest.skip("run with --mutant-seeds 1,2,3 to check every mutant under random examples from several seeds")
    found = [m for m in BY_COMPONENT[component] if m.expected(torch.cuda.is_available())]
    if not found:
        pytest.skip(f"every {component} mutant is caught only by tests that need a GPU")
    pairs = {f"({t} and {m.name})" for m in found for t in m.expected(torch.cuda.is_available())}
    missed = defaultdict(list)
    for seed in seeds:
        failed = failed_tests(run_suite(component, [str(m.path) for m in found], pairs, tmp_path, seed))
        for m in found:
            for test in m.expected(torch.cuda.is_available()):
                if test not in failed[m.name]:
                    missed[(m.name, test)].append(seed)
    lucky = [f"{name}: {test} passed under seed {', '.join(map(str, s))} of {', '.join(map(str, seeds))}"
             for (name, test), s in sorted(missed.items())]
    assert not lucky, "caught only under some seeds (give the test a revealing @example):\n" + "\n".join(lucky)


def test_mutants_document_is_current():
    doc = ROOT / "docs" / "mutants.md"
    assert doc.exists() and doc.read_text() == mutants.markdown(), (
        "docs/mutants.md is out of date: run `python -m fmspec.candidates.mutants > docs/mutants.md`")


def test_every_suite_test_is_caught_by_some_mutant():
    """A test no mutant fails has never been seen to fail: each suite test function is listed in some
    mutant's CAUGHT_BY (or CAUGHT_BY_GPU), or in ``mutants.UNCAUGHT`` with the reason none can be."""
    missed = [f"{c}: {t}" for c, t in mutants.uncaught() if t not in mutants.UNCAUGHT]
    assert not missed, "suite tests no mutant lists as catching it (write one, or say why in UNCAUGHT):\n" + "\n".join(missed)
    stale = set(mutants.UNCAUGHT) - {t for _, t in mutants.uncaught()}
    assert not stale, f"mutants.UNCAUGHT names tests that are caught or gone: {sorted(stale)}"


def test_every_mutant_names_a_component_with_a_suite_and_its_catching_tests():
    for m in mutants.discover():
        assert suite_modules(m.component), f"{m.name}: no suites/test_{m.component}.py"
        assert m.caught_by or m.caught_by_gpu, f"{m.name}: neither CAUGHT_BY nor CAUGHT_BY_GPU lists a test"
