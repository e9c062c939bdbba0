"""The harness itself: candidate loading, missing/unsupported outcomes, the results file."""

from __future__ import annotations

import json
import shlex
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from fmspec.reports import schema

ROOT = Path(__file__).resolve().parent.parent

SUITE = """
import pytest
import torch

pytestmark = pytest.mark.component("toy")

@pytest.mark.needs("toy.double")
def test_doubles(candidate):
    assert candidate.toy.double(2) == 4

@pytest.mark.needs("toy.halve")
def test_halves(candidate):
    assert candidate.toy.halve(4) == 2

@pytest.mark.needs("toy.double")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_in_dtype(candidate, dtype):
    assert candidate.toy.double(torch.ones(2, dtype=dtype)).dtype == dtype
"""

GOOD = """
import types
toy = types.SimpleNamespace(double=lambda x: 2 * x, halve=lambda x: x / 2)
CAPABILITIES = {"toy": {"dtypes": ["float64"]}}
"""

PARTIAL = """
import types
def halve(x):
    raise NotImplementedError("halve")
toy = types.SimpleNamespace(double=lambda x: 2 * x + 0 * x, halve=halve)
"""

WRONG = """
import types
toy = types.SimpleNamespace(double=lambda x: 3 * x)
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_toy=SUITE, good=GOOD, partial=PARTIAL, wrong=WRONG)
    return pytester


def results(pytester: pytest.Pytester, name: str = "results.json") -> dict:
    return schema.load(pytester.path / name)


def outcomes(doc: dict) -> dict[str, str]:
    return {t["nodeid"].split("::")[1]: t["outcome"] for t in doc["tests"]}


# ------------------------------------------------------------------------------------------------ loading
def test_path_to_py_file_is_loaded(suite):
    res = suite.runpytest("--candidate", "good.py", "--fmspec-results", "results.json")
    res.assert_outcomes(passed=3)
    doc = results(suite)
    assert doc["candidates"][0]["name"] == "good"
    assert doc["candidates"][0]["source"].startswith("path ")


def test_module_with_attribute_is_loaded(suite):
    suite.makepyfile(holder="import types\nimpl = types.SimpleNamespace(toy=types.SimpleNamespace(double=lambda x: 2 * x, halve=lambda x: x / 2))\n")
    suite.syspathinsert()
    res = suite.runpytest("--candidate", "holder:impl", "--fmspec-results", "results.json")
    assert res.parseoutcomes() == {"passed": 3, "unsupported": 1}  # float16 is not a default dtype


def test_package_folder_is_loaded(suite):
    pkg = suite.mkpydir("mypkg")
    (pkg / "__init__.py").write_text(GOOD)
    res = suite.runpytest("--candidate", "./mypkg", "--fmspec-results", "results.json")
    res.assert_outcomes(passed=3)


def test_entry_point_name_is_loaded(pytester):
    pytester.makepyfile(test_posenc_smoke="""
        import pytest
        @pytest.mark.needs("posenc.sinusoidal")
        def test_shape(candidate):
            assert tuple(candidate.posenc.sinusoidal(3, 4).shape) == (3, 4)
    """)
    res = pytester.runpytest("--candidate", "reference", "--fmspec-results", "r.json")
    res.assert_outcomes(passed=1)
    assert results(pytester, "r.json")["candidates"][0]["source"] == "entry point reference = fmspec.candidates.reference"


@pytest.mark.parametrize("spec, expected", [
    ("no_such_candidate", "no installed candidate, importable module or path of that name (installed candidates: "),
    ("./missing/file.py", "path does not exist"),
    ("nopkg.nomod:thing", "cannot import 'nopkg.nomod': ModuleNotFoundError: No module named 'nopkg'"),
    ("json:no_such_attr", "has no attribute 'no_such_attr'"),
], ids=["unknown-name", "missing-path", "missing-module", "missing-attr"])
def test_bad_candidate_is_a_one_line_usage_error(suite, spec, expected):
    res = suite.runpytest("--candidate", spec)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in res.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1 and expected in errors[0], res.errlines
    assert "Traceback" not in res.stderr.str()


def test_candidate_raising_at_import_fails_its_tests_with_the_exception(suite):
    """A broken submission must not take the run down: its tests fail with the reason, the others run."""
    suite.makepyfile(broken="raise RuntimeError('kaboom in candidate')\n")
    res = suite.runpytest("--candidate", "broken.py", "--candidate", "good.py", "--fmspec-results", "results.json")
    assert res.ret == pytest.ExitCode.TESTS_FAILED
    res.stdout.fnmatch_lines(["fmspec: candidate broken could not be imported: *RuntimeError: kaboom in candidate*"])
    assert "Traceback" not in res.stdout.str()
    # one error for the candidate, not one per test: its tests are "not run" in the terminal
    res.stdout.fnmatch_lines(["*= 3 passed, 4 not run, 1 unsupported in *"])
    res.stdout.fnmatch_lines(["broken * not run (4 tests): could not be imported: *kaboom*"])
    assert res.stdout.str().count("kaboom") == 2, res.stdout.str()  # the header and the summary line
    doc = results(suite)
    assert doc["status"] == "complete"
    assert doc["summary"]["broken"]["toy"] == {"failed": 4}
    assert doc["summary"]["good"]["toy"] == {"passed": 3, "unsupported": 1}
    assert all("kaboom in candidate" in t["message"] for t in doc["tests"] if t["candidate"] == "broken")
    assert "kaboom" in doc["candidates"][0]["error"]


def test_folder_without_init_is_rejected(suite):
    (suite.path / "notpkg").mkdir()
    res = suite.runpytest("--candidate", "./notpkg")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert any("not a package (no __init__.py)" in line for line in res.errlines)


def test_entry_point_that_points_nowhere_is_a_usage_error(suite, monkeypatch):
    from importlib.metadata import EntryPoint

    from fmspec import loader

    monkeypatch.setattr(loader, "entry_points", lambda: {"ghost": EntryPoint("ghost", "ghost_pkg.impl", loader.GROUP)})
    res = suite.runpytest("--candidate", "ghost")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert any("entry point 'ghost' (ghost_pkg.impl): cannot import 'ghost_pkg.impl': ModuleNotFoundError"  in line for line in res.errlines)


def test_list_candidates_shows_installed_ones_with_their_origin(pytester):
    res = pytester.runpytest("--list-candidates")
    assert res.ret == 0
    res.stdout.fnmatch_lines(["*reference*candidates.reference*(fmspec *)", "*template*candidates.template*"])


# ----------------------------------------------------------------------------------------------- outcomes
def test_missing_feature_and_not_implemented_are_missing_not_failed(suite):
    res = suite.runpytest("--candidate", "partial.py", "--fmspec-results", "results.json")
    assert res.ret == 0
    assert res.parseoutcomes() == {"passed": 2, "unsupported": 1, "missing": 1}
    assert outcomes(results(suite))["test_halves[partial]"] == "missing"


def test_absent_feature_is_missing(suite):
    res = suite.runpytest("--candidate", "wrong.py", "--fmspec-results", "results.json")
    got = outcomes(results(suite))
    assert got["test_halves[wrong]"] == "missing"
    assert got["test_doubles[wrong]"] == "failed"
    assert res.ret == pytest.ExitCode.TESTS_FAILED


def test_contract_checks_hold_in_tests_and_stay_out_of_benchmarks(pytester):
    """A candidate returning a view of its argument fails a test (outputs are new tensors) but a test
    marked ``bench`` calls it unchecked: a benchmark times the candidate, not the checks' snapshots."""
    pytester.makepyfile(test_views="""
        import pytest
        import torch

        pytestmark = pytest.mark.component("toy")

        def test_plain(candidate):
            candidate.toy.same(torch.ones(3))

        @pytest.mark.bench
        def test_timed(candidate):
            candidate.toy.same(torch.ones(3))
        """, viewer="import types\ntoy = types.SimpleNamespace(same=lambda x: x[:])\n")
    res = pytester.runpytest("--candidate", "viewer.py", "--fmspec-results", "results.json", "--fmspec-bench")
    got = outcomes(results(pytester))
    assert got == {"test_plain[viewer]": "failed", "test_timed[viewer]": "passed"}, got
    res.stdout.fnmatch_lines(["*out shares memory with argument 0*"])


def test_undeclared_dtype_is_unsupported(suite):
    res = suite.runpytest("--candidate", "good.py", "--fmspec-results", "results.json")
    got = outcomes(results(suite))
    assert got["test_in_dtype[good-dtype0]"] == "passed"
    assert got["test_in_dtype[good-dtype1]"] == "unsupported"
    assert res.parseoutcomes() == {"passed": 3, "unsupported": 1}


def test_two_candidates_run_side_by_side(suite):
    res = suite.runpytest("--candidate", "good.py", "--candidate", "wrong.py", "--fmspec-results", "results.json")
    doc = results(suite)
    assert [c["name"] for c in doc["candidates"]] == ["good", "wrong"]
    assert doc["summary"]["good"]["toy"] == {"passed": 3, "unsupported": 1}
    assert doc["summary"]["wrong"]["toy"] == {"failed": 1, "missing": 1, "passed": 1, "unsupported": 1}
    res.stdout.fnmatch_lines(["*fmspec*", "good*toy*3 passed, 1 unsupported", "wrong*toy*1 failed, 1 missing*"])


def test_template_candidate_is_all_missing_and_exits_cleanly(pytester):
    res = pytester.runpytest_subprocess(str(ROOT / "suites"), "--candidate", "template", "-p", "no:cacheprovider",
                                        "--fmspec-results", str(pytester.path / "t.json"), "--rootdir", str(ROOT))
    assert res.ret == 0, res.stdout.str()[-2000:]
    doc = schema.load(pytester.path / "t.json")
    kinds = {t["outcome"] for t in doc["tests"]}
    assert kinds <= {"missing", "skipped", "unsupported"} and "missing" in kinds, kinds  # unsupported: default capabilities


# ----------------------------------------------------------------------------------------------- results
def test_results_file_records_environment_candidate_and_each_test(suite):
    suite.makepyfile(test_prop="""
        import pytest
        from hypothesis import given, strategies as st
        pytestmark = pytest.mark.component("toy")
        @pytest.mark.needs("toy.double")
        @given(st.integers(0, 1000))
        def test_double_is_even_small(candidate, n):
            assert candidate.toy.double(n) < 100
    """)
    suite.runpytest("--candidate", "good.py", "--fmspec-results", "results.json", "--hypothesis-profile", "ci")
    doc = results(suite)
    assert doc["schema"] == "fmspec-results" and doc["version"] == schema.VERSION
    assert doc["status"] == "complete" and not doc["partial"]
    assert {"python", "torch", "device", "commit"} <= set(doc["environment"])
    assert doc["run"]["profile"] == "ci"
    rec = next(t for t in doc["tests"] if t["property"] == "test_double_is_even_small")
    assert rec["outcome"] == "failed" and rec["component"] == "toy" and rec["features"] == ["toy.double"]
    assert "n=50" in rec["example"], rec["example"]  # hypothesis's minimal example: 2 * 50 = 100
    assert "--candidate good.py" in rec["reproduce"] and "--hypothesis-profile ci" in rec["reproduce"]
    assert rec["duration"] > 0


def test_results_file_is_signed_with_the_graders_key(suite, monkeypatch, tmp_path):
    """The writer signs every rewrite with the key (fmspec/integrity.py); with no key in the environment the
    first run creates the key file, 0600, and a second run reuses it."""
    suite.runpytest("--candidate", "good.py", "--fmspec-results", "results.json")
    assert results(suite)["integrity"] == "valid"  # tests/conftest.py's key, set in the environment
    monkeypatch.delenv("FMSPEC_RESULTS_KEY")
    monkeypatch.setenv("FMSPEC_KEY_FILE", str(tmp_path / "cfg" / "key"))
    assert results(suite)["integrity"] == "other key"
    suite.runpytest("--candidate", "good.py", "--fmspec-results", "results.json")
    assert results(suite)["integrity"] == "valid" and (tmp_path / "cfg" / "key").stat().st_mode & 0o777 == 0o600
    key = (tmp_path / "cfg" / "key").read_bytes()
    suite.runpytest("--candidate", "good.py", "--fmspec-results", "again.json")
    assert results(suite, "again.json")["integrity"] == "valid" and (tmp_path / "cfg" / "key").read_bytes() == key


def test_killed_run_leaves_a_partial_results_file_with_finished_tests(pytester):
    pytester.makepyfile(test_crash="""
        import os, signal, time
        def test_first():
            pass
        def test_second():
            pass
        def test_dies():
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    out = pytester.path / "crash.json"
    res = pytester.runpytest_subprocess("--fmspec-results", str(out), "-p", "no:cacheprovider")
    assert res.ret == -signal.SIGKILL
    doc = schema.load(out)
    assert doc["partial"] and doc["status"] == "running"
    assert {t["property"]: t["outcome"] for t in doc["tests"]} == {"test_first": "passed", "test_second": "passed"}


def test_interrupted_run_is_marked_interrupted(pytester):
    pytester.makepyfile(test_int="""
        def test_first():
            pass
        def test_stop():
            raise KeyboardInterrupt
    """)
    pytester.runpytest_subprocess("--fmspec-results", "i.json", "-p", "no:cacheprovider")
    doc = schema.load(pytester.path / "i.json")
    assert doc["status"] == "interrupted" and doc["partial"]  # the tests after the interruption never ran
    assert any(t["property"] == "test_first" and t["outcome"] == "passed" for t in doc["tests"])


def test_run_ended_by_an_internal_error_is_marked_interrupted(pytester):
    """pytest's INTERNALERROR (here a hook that raises; in the wild, a timeout firing while pytest formats a
    failure) stops the run: the file must not say complete, or the gate would pass what never ran."""
    pytester.makeconftest("""
        def pytest_runtest_logfinish(nodeid, location):
            if nodeid.endswith("test_second"):
                raise RuntimeError("internal")
    """)
    pytester.makepyfile(test_ie="""
        def test_first():
            pass
        def test_second():
            pass
        def test_third():
            pass
    """)
    result = pytester.runpytest_subprocess("--fmspec-results", "ie.json", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERNAL_ERROR
    doc = schema.load(pytester.path / "ie.json")
    assert doc["status"] == "interrupted" and doc["partial"]
    assert "test_third" not in {t["property"] for t in doc["tests"]}


def test_results_of_unknown_schema_version_are_rejected(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"schema": "fmspec-results", "version": 99}))
    with pytest.raises(schema.ResultsError, match="version 99 is not supported"):
        schema.load(bad)


def test_inputs_modified_in_place_fail(suite):
    suite.makepyfile(inplace="""
        import types
        def double(x):
            x.mul_(2)
            return x
        toy = types.SimpleNamespace(double=double)
    """, test_inplace="""
        import pytest, torch
        from fmspec.suites import asserts as ah
        @pytest.mark.needs("toy.double")
        def test_double(candidate):
            ah.call(candidate.toy.double, "toy.double", torch.ones(3))
    """)
    res = suite.runpytest("test_inplace.py", "--candidate", "inplace.py", "--fmspec-results", "r.json")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*argument 0 (tensor(shape=(3,), dtype=float32)) was modified in place*"])


def test_suite_runs_from_installed_package_with_pyargs(pytester):
    res = pytester.runpytest_subprocess("--pyargs", "fmspec.suites.test_posenc", "-m", "smoke", "-p", "no:cacheprovider",
                                        "--fmspec-results", "p.json")
    assert res.ret == 0, res.stdout.str()[-2000:]
    assert results(pytester, "p.json")["summary"]["reference"]["posenc"]["passed"] >= 3


def test_parameters_that_are_not_utf8_survive_xdist_and_the_results_file(pytester):
    pytester.makepyfile(test_surrogate="""
        import pytest
        @pytest.mark.parametrize("text", ["\\ud800"], ids=["lone-surrogate"])
        def test_takes_a_lone_surrogate(text):
            assert len(text) == 1
    """)
    res = pytester.runpytest_subprocess("-n", "1", "--fmspec-results", "s.json", "-p", "no:cacheprovider")
    assert res.ret == 0, res.stdout.str()[-2000:]
    assert results(pytester, "s.json")["tests"][0]["params"] == {"text": "\\ud800"}


def test_candidates_with_the_same_name_are_kept_apart(suite):
    """Two submissions copied from the template into folders of the same name are two candidates."""
    for who, body in (("alice", GOOD), ("bob", WRONG)):
        pkg = suite.path / "subs" / who / "mine"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(body)
    res = suite.runpytest("--candidate", "subs/alice/mine", "--candidate", "subs/bob/mine", "--fmspec-results", "results.json")
    doc = results(suite)
    assert [c["name"] for c in doc["candidates"]] == ["alice/mine", "bob/mine"]
    assert doc["summary"]["alice/mine"]["toy"] == {"passed": 3, "unsupported": 1}
    assert doc["summary"]["bob/mine"]["toy"]["failed"] == 1
    failed = [t for t in doc["tests"] if t["outcome"] == "failed"]
    assert failed and all("subs/bob/mine" in t["reproduce"] for t in failed)
    assert res.ret == pytest.ExitCode.TESTS_FAILED


def test_the_same_candidate_twice_is_a_usage_error(suite):
    res = suite.runpytest("--candidate", "good.py", "--candidate", "./good.py")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "2 candidates are named 'good'" in res.stderr.str()


def test_summary_lists_missing_features_and_reproduce_commands(suite):
    res = suite.runpytest("--candidate", "partial.py", "--candidate", "wrong.py", "--fmspec-results", "results.json")
    res.stdout.fnmatch_lines(["partial: implement next (missing tests each unlocks, in this order; 1 in all):",
                              "  toy.halve (1)",
                              "wrong: implement next (missing tests each unlocks, in this order; 1 in all):",
                              "  toy.halve (1)",
                              "reproduce a failure:",
                              "  pytest 'test_toy.py::test_doubles[[]wrong[]]' --fmspec-results *results-reproduce.json --candidate wrong.py"])


def test_reproduce_command_writes_beside_the_full_results(suite):
    suite.runpytest("--candidate", "wrong.py", "--fmspec-results", "results.json")
    full = results(suite)
    command = shlex.split(next(t["reproduce"] for t in full["tests"] if t["outcome"] == "failed"))
    assert command[0] == "pytest"
    suite.runpytest(*command[1:])
    assert results(suite) == full, "the reproduce command overwrote the full run's results"
    again = results(suite, "results-reproduce.json")
    assert [t["outcome"] for t in again["tests"]] == ["failed"]


def test_next_features_is_the_smallest_set_that_unlocks_the_most_tests():
    from fmspec.recorder import next_features

    assert next_features([{"a"}, {"a"}, {"a", "b"}, {"c"}]) == [("a", 2), ("b", 1), ("c", 1)]
    # a feature every test needs comes first even when no test is complete without another one
    assert next_features([{"x", "y"}, {"x", "z"}, {"x", "y"}]) == [("x", 0), ("y", 2), ("z", 1)]
    assert next_features([]) == []
