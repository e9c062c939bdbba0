"""Fault injection: hostile or broken candidates cannot crash the run, lose the report, or pass by cheating."""

from __future__ import annotations

import json

import psutil
import pytest

from fmspec import integrity
from fmspec.reports import schema

SUITE = """
import pytest
import torch
from fmspec.suites import asserts as ah

pytestmark = pytest.mark.component("toy")

@pytest.mark.needs("toy.before")
def test_before(candidate):
    assert candidate.toy.before() == 1

@pytest.mark.needs("toy.act")
def test_act(candidate):
    x = torch.arange(4.0)
    expected = 2 * x
    ah.assert_close(ah.call(candidate.toy.act, "toy.act", x), expected)

@pytest.mark.needs("toy.after")
def test_after(candidate):
    assert candidate.toy.after() == 1
"""

HONEST = "lambda x: 2 * x"


def candidate_source(act_body: str, prelude: str = "") -> str:
    return f"""
import types
{prelude}
def act(x):
{act_body}
toy = types.SimpleNamespace(before=lambda: 1, act=act, after=lambda: 1)
"""


@pytest.fixture
def run(pytester: pytest.Pytester):
    """Run the toy suite on a candidate in a fresh process; returns (result, results document)."""
    pytester.makepyfile(test_toy=SUITE)

    def go(act_body: str, *args: str, prelude: str = ""):
        pytester.makepyfile(cand=candidate_source(act_body, prelude))
        res = pytester.runpytest_subprocess("--candidate", "cand.py", "--fmspec-results", "r.json",
                                            "-p", "no:cacheprovider", *args, timeout=300)
        return res, schema.load(pytester.path / "r.json")

    return go


def by_test(doc: dict) -> dict[str, dict]:
    return {t["property"]: t for t in doc["tests"]}


def assert_contained(doc: dict, reason: str) -> None:
    """The faulty test failed with the reason; the tests around it ran; the results file is complete."""
    tests = by_test(doc)
    assert doc["status"] == "complete" and not doc["partial"]
    assert tests["test_before"]["outcome"] == "passed" and tests["test_after"]["outcome"] == "passed"
    assert tests["test_act"]["outcome"] == "failed", tests["test_act"]
    assert reason in tests["test_act"]["message"], tests["test_act"]["message"]


# --------------------------------------------------------------------------------------------------- faults
def test_segfault_is_a_failed_test_under_xdist(run):
    res, doc = run("    import ctypes\n    ctypes.string_at(0)", "-n", "1")
    assert_contained(doc, "crashed")


def test_os_exit_is_a_failed_test_under_xdist(run):
    res, doc = run("    import os\n    os._exit(3)", "-n", "1")
    assert_contained(doc, "crashed")


def test_sys_exit_is_a_failed_test(run):
    res, doc = run("    import sys\n    sys.exit(0)")
    assert_contained(doc, "SystemExit")


def test_infinite_loop_is_stopped_by_the_timeout(run):
    res, doc = run("    while True:\n        pass", "--timeout", "3")
    assert_contained(doc, "Timeout")


def test_hanging_property_test_ends_within_its_timeout(pytester):
    """pytest-timeout interrupts a hanging example once; hypothesis takes that for a failure and calls the
    candidate again to shrink it, with no timer left. The plugin stops the test there instead."""
    pytester.makepyfile(test_prop="""
        import pytest
        from hypothesis import given, strategies as st

        @pytest.mark.needs("toy.act")
        @given(st.integers())
        def test_hangs(candidate, n):
            candidate.toy.act(n)

        @pytest.mark.needs("toy.after")
        def test_after(candidate):
            assert candidate.toy.after() == 1
    """)
    pytester.makepyfile(cand=candidate_source("    import time\n    while True:\n        time.sleep(0.01)"))
    res = pytester.runpytest_subprocess("--candidate", "cand.py", "--fmspec-results", "r.json", "-p", "no:cacheprovider",
                                        "--timeout", "2", timeout=300)
    doc = schema.load(pytester.path / "r.json")
    tests = by_test(doc)
    assert doc["status"] == "complete" and tests["test_after"]["outcome"] == "passed"
    assert tests["test_hangs"]["outcome"] == "failed" and "timeout" in tests["test_hangs"]["message"].lower()
    assert tests["test_hangs"]["duration"] < 10, tests["test_hangs"]["duration"]


def test_runaway_allocation_is_a_memory_error_under_the_memory_limit(run):
    res, doc = run("    hoard = []\n    while True:\n        hoard.append(bytearray(2**27))", "--fmspec-memory-limit", "4")
    assert_contained(doc, "MemoryError")


def test_megabytes_of_output_are_cut(run):
    res, doc = run("    print('x' * 20_000_000)\n    return x + 1")
    assert_contained(doc, "rel. error")
    assert len(res.stdout.str()) < 200_000
    assert "characters cut" in res.stdout.str()


def test_leftover_child_process_is_killed_and_fails_the_test(run):
    res, doc = run("    import subprocess\n    subprocess.Popen(['sleep', '600'])\n    return 2 * x")
    assert_contained(doc, "left processes running")
    pid = int(by_test(doc)["test_act"]["message"].split("pid ")[1].split()[0])
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


# ------------------------------------------------------------------------------------------------ cheating
@pytest.mark.parametrize("target", [
    "torch.allclose", "fmspec.suites.asserts.assert_close", "fmspec.suites.tolerances.ULPS", "fmspec.suites.tolerances.rel_error",
])
def test_patching_the_suite_or_torch_during_a_test_fails_it(run, target):
    module, _, attr = target.rpartition(".")
    body = (f"    import importlib\n    setattr(importlib.import_module('{module}'), '{attr}', "
            f"(lambda *a, **k: 0.0) if '{attr}' != 'ULPS' else 1e30)\n    return 3 * x")
    res, doc = run(body)
    assert_contained(doc, f"candidate replaced {target}")


def test_patching_at_import_fails_every_test_of_the_candidate(run):
    res, doc = run("    return 3 * x", prelude="import fmspec.suites.asserts\nfmspec.suites.asserts.assert_close = lambda *a, **k: None")
    assert {t["outcome"] for t in doc["tests"]} == {"failed"}
    assert "replaced fmspec.suites.asserts.assert_close while being imported" in by_test(doc)["test_act"]["message"]
    assert doc["candidates"][0]["flags"]


def test_replacing_an_oracle_helper_at_import_fails_every_test_of_the_candidate(run):
    """The suites' helper modules (oracles, strategies) are guarded from before the candidate is imported."""
    res, doc = run("    return 2 * x", prelude="import fmspec.suites._bpe_helpers as h\nh.load_gpt2 = lambda: None")
    assert {t["outcome"] for t in doc["tests"]} == {"failed"}
    assert "replaced fmspec.suites._bpe_helpers.load_gpt2 while being imported" in by_test(doc)["test_act"]["message"]


def test_patching_the_test_module_fails_the_test(run):
    body = "    import sys\n    sys.modules['test_toy'].ah = None\n    return 2 * x"
    res, doc = run(body)
    assert "candidate replaced test_toy.ah" in by_test(doc)["test_act"]["message"]


def test_inputs_mutated_in_place_fail(run):
    res, doc = run("    return x.mul_(2)")
    assert_contained(doc, "was modified in place")


def test_forbidden_library_call_fails_only_when_the_candidate_makes_it(run):
    body = "    import torch\n    return torch.mul(x, 2)"
    res, doc = run(body, "--fmspec-forbid", "toy=torch.mul")
    assert_contained(doc, "candidate called torch.mul, forbidden for this component")
    res, doc = run("    return 2 * x", "--fmspec-forbid", "toy=torch.mul")
    assert by_test(doc)["test_act"]["outcome"] == "passed"


def test_reexported_reference_is_flagged(run, pytester):
    pytester.makepyfile(reexport="""
        import types
        from fmspec.reference.posenc import sinusoidal
        toy = types.SimpleNamespace(before=sinusoidal)
    """)
    pytester.runpytest_subprocess("--candidate", "reexport.py", "-k", "before", "--fmspec-results", "x.json")
    rec = by_test(schema.load(pytester.path / "x.json"))["test_before"]
    assert rec["flags"] == ["toy.before is the reference's own code"]


# ------------------------------------------------------------------------------------------ reproducibility
def test_ci_profile_gives_the_same_results_twice(pytester):
    pytester.makepyfile(test_prop="""
        import pytest
        from hypothesis import given, strategies as st
        @given(st.integers(0, 10_000), st.integers(0, 10_000))
        def test_small_sum(a, b):
            assert a + b < 5_000
    """)
    docs = []
    for name in ("a.json", "b.json"):
        pytester.runpytest_subprocess("--hypothesis-profile", "ci", "--fmspec-results", name, "-p", "no:cacheprovider")
        docs.append(schema.load(pytester.path / name))
    strip = [[(t["nodeid"], t["outcome"], t["example"]) for t in d["tests"]] for d in docs]
    assert strip[0] == strip[1] and strip[0][0][2]
    assert docs[0]["run"]["profile"] == "ci"


def test_hidden_seed_is_recorded_as_hidden_and_reproduces(pytester):
    pytester.makepyfile(test_prop="""
        from hypothesis import given, settings, strategies as st
        @settings(max_examples=100)  # more than the profile's 10: a big n is found whatever the seed
        @given(st.integers(0, 10**9))
        def test_never_big(n):
            assert n < 10**8
    """)
    examples = []
    for name in ("a.json", "b.json"):
        pytester.runpytest_subprocess("--fmspec-hidden-seed", "4242", "--fmspec-results", name, "-p", "no:cacheprovider")
        doc = schema.load(pytester.path / name)
        assert doc["run"]["seed"] == "hidden" and "4242" not in doc["run"]["args"]
        assert doc["run"]["profile"] == "hidden"
        assert doc["run"]["seed_id"] == integrity.seed_id(4242) != integrity.seed_id(4243)  # the grader can tell which
        examples.append(doc["tests"][0]["example"])
    assert examples[0] == examples[1] and examples[0]


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args, expected", [
    (["--fmspec-forbid", "attention"], "expected COMPONENT=module.function"),
    (["--fmspec-forbid", "attention=torch.no_such_function"], "no function 'torch.no_such_function'"),
    (["--fmspec-memory-limit", "lots"], "invalid float value: 'lots'"),
    (["--fmspec-hidden-seed", "abc"], "invalid int value: 'abc'"),
    (["--fmspec-results", "/proc/no/such/dir/r.json"], "--fmspec-results"),
], ids=["forbid-format", "forbid-unknown", "memory-limit", "hidden-seed", "results-path"])
def test_bad_option_is_a_one_line_usage_error(pytester, args, expected):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    res = pytester.runpytest(*args)
    assert res.ret in (pytest.ExitCode.USAGE_ERROR, 2), res.stdout.str()
    assert expected in res.stderr.str(), res.stderr.str()
    assert "Traceback" not in res.stderr.str() + res.stdout.str()


def test_results_file_stays_small_for_a_flooding_candidate(run, pytester):
    res, doc = run("    print('y' * 5_000_000)\n    raise ValueError('z' * 5_000_000)")
    assert (pytester.path / "r.json").stat().st_size < 100_000
    json.loads((pytester.path / "r.json").read_text())
