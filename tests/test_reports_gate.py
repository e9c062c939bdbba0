"""The CI gate: every policy rule passing and failing, policy errors, the sample policies, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fmspec import integrity
from fmspec.reports import cli, gate
from fmspec.reports import tables as tb

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "reports" / "policies"
DATA = ROOT / "tests" / "data" / "results"


# ------------------------------------------------------------------------------------------------ helpers
def test_record(candidate: str, component: str, prop: str, outcome: str, features=None, message=None, **params) -> dict:
    nodeid = f"suites/test_{component}.py::{prop}[{candidate}{'-' if params else ''}{'-'.join(map(str, params.values()))}]"
    return {"nodeid": nodeid, "candidate": candidate, "component": component,
            "features": features or [f"{component}.f"], "property": prop, "params": {k: str(v) for k, v in params.items()},
            "outcome": outcome, "duration": 0.1, "message": message, "example": None,
            "reproduce": f"pytest '{nodeid}'" if outcome == "failed" else None, "metrics": None}


test_record.__test__ = False  # a helper, not a test


def bench_record(candidate: str, component: str, T: int, median: float, **extra) -> dict:
    nodeid = f"suites/bench_{component}.py::test_speed[{candidate}-T{T}]"
    return {"nodeid": nodeid, "name": f"test_speed[{candidate}-T{T}]", "group": None,
            "candidate": f"Candidate(name='{candidate}', source='x', version='0')", "params": {"T": str(T)},
            "stats": {"median": median, "mean": median, "rounds": 10}, "extra_info": extra}


def write_results(tmp_path: Path, tests: list[dict], benchmarks=(), status="complete", name="r.json") -> Path:
    cands = list(dict.fromkeys([t["candidate"] for t in tests] + [b["candidate"].split("'")[1] for b in benchmarks]))
    doc = {"schema": "fmspec-results", "version": 1, "status": status, "started": "2026-01-01T00:00:00+00:00",
           "finished": None, "environment": {"device": "cpu", "commit": "abc"}, "run": {"profile": "ci"},
           "candidates": [{"name": c, "source": "x", "version": "0"} for c in cands], "tests": tests,
           "benchmarks": list(benchmarks), "summary": {}}
    return save(tmp_path / name, doc)


def save(path: Path, doc: dict) -> Path:
    """Write a results document signed as the writer signs it (with tests/conftest.py's key)."""
    doc["integrity"] = integrity.sign(doc, integrity.key())
    path.write_text(json.dumps(doc))
    return path


def write_policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


def verdict(tmp_path: Path, tests, policy: str, benchmarks=(), status="complete", candidate="mine") -> gate.Verdict:
    results = tb.Results(tb.load_runs([write_results(tmp_path, tests, benchmarks, status)]))
    return gate.evaluate(results, gate.load_policy(write_policy(tmp_path, policy)), candidate)


def check(v: gate.Verdict, rule: str) -> gate.Check:
    found = [c for c in v.checks if c.rule == rule]
    assert len(found) == 1, f"{rule!r} not in {[c.rule for c in v.checks]}"
    return found[0]


PASSING = [test_record("mine", "posenc", "test_a", "passed"), test_record("mine", "posenc", "test_b", "passed")]


# --------------------------------------------------------------------------------------------- the rules
def test_complete_rule_passes_on_a_finished_run(tmp_path):
    v = verdict(tmp_path, PASSING, "[components.posenc]\nrequired = true\n")
    assert check(v, "complete").ok and v.passed


def test_complete_rule_fails_on_a_partial_run(tmp_path):
    v = verdict(tmp_path, PASSING, "[components.posenc]\nrequired = true\n", status="running")
    assert not check(v, "complete").ok and not v.passed
    assert "did not finish" in check(v, "complete").detail


def test_allow_partial_lets_a_partial_run_pass(tmp_path):
    v = verdict(tmp_path, PASSING, "[gate]\nallow_partial = true\n[components.posenc]\nrequired = true\n", status="running")
    assert check(v, "complete").ok and v.passed


def test_required_component_passes_when_every_test_passed(tmp_path):
    v = verdict(tmp_path, PASSING, "[components.posenc]\nrequired = true\n")
    assert check(v, "posenc required").ok and check(v, "posenc required").detail == "2/2 passed"


def test_required_component_fails_on_a_failed_test(tmp_path):
    tests = PASSING + [test_record("mine", "posenc", "test_c", "failed", message="E   AssertionError: no")]
    v = verdict(tmp_path, tests, "[components.posenc]\nrequired = true\n")
    c = check(v, "posenc required")
    assert not c.ok and "1 failed (test_c)" in c.detail and not v.passed


def test_required_component_fails_on_an_error(tmp_path):
    tests = PASSING + [test_record("mine", "posenc", "test_c", "error")]
    assert not check(verdict(tmp_path, tests, "[components.posenc]\nrequired = true\n"), "posenc required").ok


def test_required_component_fails_when_nothing_was_recorded(tmp_path):
    v = verdict(tmp_path, PASSING, "[components.posenc]\nrequired = true\n[components.bpe]\nrequired = true\n")
    assert not check(v, "bpe required").ok and check(v, "bpe required").detail == "no tests recorded"


def test_required_component_fails_on_a_missing_feature(tmp_path):
    tests = PASSING + [test_record("mine", "attention", "test_x", "missing", ["attention.sparse"],
                                   "fmspec.outcomes.Missing: candidate 'mine' has no attention.sparse"),
                       test_record("mine", "attention", "test_y", "passed", ["attention.scaled_dot_product"])]
    v = verdict(tmp_path, tests, "[components.attention]\nrequired = true\n")
    c = check(v, "attention required")
    assert not c.ok and "1 missing (attention.sparse)" in c.detail


def test_may_be_missing_allows_listed_features_only(tmp_path):
    tests = [test_record("mine", "attention", "test_x", "missing", ["attention.sparse", "attention.sliding_window_mask"],
                         "fmspec.outcomes.Missing: candidate 'mine' has no attention.sparse"),
             test_record("mine", "attention", "test_z", "missing", ["attention.linear"],
                         "Missing: NotImplementedError: attention.linear"),
             test_record("mine", "attention", "test_y", "passed", ["attention.scaled_dot_product"])]
    ok = verdict(tmp_path, tests, '[components.attention]\nrequired = true\n'
                                  'may_be_missing = ["attention.sparse", "attention.linear"]\n')
    assert check(ok, "attention required").ok and "2 missing allowed" in check(ok, "attention required").detail
    bad = verdict(tmp_path, tests, '[components.attention]\nrequired = true\nmay_be_missing = ["attention.linear"]\n')
    assert not check(bad, "attention required").ok
    anything = verdict(tmp_path, tests, "[components.attention]\nrequired = true\nmay_be_missing = true\n")
    assert check(anything, "attention required").ok


def test_may_be_missing_entry_matching_no_test_is_warned_about(tmp_path):
    """A may_be_missing entry no recorded test needs (a typo, or a feature the suite dropped) is reported,
    not silently kept; entries that match stay quiet."""
    tests = [test_record("mine", "attention", "test_x", "missing", ["attention.linear"],
                         "fmspec.outcomes.Missing: candidate 'mine' has no attention.linear"),
             test_record("mine", "attention", "test_y", "passed", ["attention.scaled_dot_product"])]
    v = verdict(tmp_path, tests, '[components.attention]\nrequired = true\n'
                                 'may_be_missing = ["attention.linear", "attention.performr"]\n')
    assert check(v, "attention required").ok
    assert len(v.warnings) == 1 and "'attention.performr' matches no test" in v.warnings[0], v.warnings
    assert "warn  components.attention.may_be_missing: 'attention.performr'" in v.text()
    quiet = verdict(tmp_path, tests, '[components.attention]\nrequired = true\nmay_be_missing = ["attention.linear"]\n')
    assert quiet.warnings == [] and "warn" not in quiet.text()


def test_unsupported_is_allowed_unless_the_policy_says_otherwise(tmp_path):
    tests = PASSING + [test_record("mine", "posenc", "test_gpu", "unsupported", message="posenc on cuda (CAPABILITIES)")]
    assert check(verdict(tmp_path, tests, "[components.posenc]\nrequired = true\n"), "posenc required").ok
    strict = verdict(tmp_path, tests, "[components.posenc]\nrequired = true\nallow_unsupported = false\n")
    assert not check(strict, "posenc required").ok


def test_required_feature_passes_and_fails(tmp_path):
    tests = [test_record("mine", "quant", "test_a", "passed", ["quant.absmax_quantize"]),
             test_record("mine", "quant", "test_b", "failed", ["quant.nf4_quantize"]),
             test_record("mine", "quant", "test_c", "missing", ["quant.int8_matmul"])]
    v = verdict(tmp_path, tests, '[components.quant]\nfeatures = ["quant.absmax_quantize", "quant.nf4_quantize", '
                                 '"quant.int8_matmul", "quant.zeropoint_quantize"]\n')
    assert check(v, "quant.absmax_quantize required").ok
    assert not check(v, "quant.nf4_quantize required").ok
    assert "did not pass (missing)" in check(v, "quant.int8_matmul required").detail
    assert check(v, "quant.zeropoint_quantize required").detail == "no test of it recorded"
    assert not v.passed


def test_optional_component_failures_cost_points_but_not_the_gate(tmp_path):
    tests = PASSING + [test_record("mine", "lora", "test_a", "passed"), test_record("mine", "lora", "test_b", "failed")]
    v = verdict(tmp_path, tests, "[components.lora]\npoints = 10\n[components.posenc]\nrequired = true\npoints = 5\n")
    assert v.passed
    assert v.scores["lora"].score == pytest.approx(5.0) and v.scores["posenc"].score == pytest.approx(5.0)
    assert (v.score, v.max_score) == (pytest.approx(10.0), 15.0)


def test_points_count_failed_and_disallowed_missing_not_unsupported(tmp_path):
    tests = [test_record("mine", "quant", "t1", "passed", ["quant.absmax_quantize"]),
             test_record("mine", "quant", "t2", "passed", ["quant.absmax_quantize"]),
             test_record("mine", "quant", "t3", "failed", ["quant.absmax_quantize"]),
             test_record("mine", "quant", "t4", "missing", ["quant.int8_matmul"], "has no quant.int8_matmul"),
             test_record("mine", "quant", "t5", "missing", ["quant.nf4_quantize"], "has no quant.nf4_quantize"),
             test_record("mine", "quant", "t6", "unsupported")]
    v = verdict(tmp_path, tests, '[components.quant]\npoints = 10\nmay_be_missing = ["quant.nf4_quantize"]\n')
    assert v.scores["quant"].counted == 4  # 2 passed + 1 failed + 1 missing that is not allowed
    assert v.scores["quant"].score == pytest.approx(5.0)


def test_min_score_passes_and_fails(tmp_path):
    tests = PASSING + [test_record("mine", "lora", "test_a", "passed"), test_record("mine", "lora", "test_b", "failed")]
    policy = "[gate]\nmin_score = {}\n[components.lora]\npoints = 10\n[components.posenc]\npoints = 10\n"
    ok = verdict(tmp_path, tests, policy.format(0.75))
    assert check(ok, "score").ok and "15/20 = 75.0% ≥ 75%" in check(ok, "score").detail
    bad = verdict(tmp_path, tests, policy.format(0.8))
    assert not check(bad, "score").ok and not bad.passed


FLASH_OK = [test_record(c, "flash", "test_equal", "passed") for c in ("mine", "reference")]


def speed_benchmarks(mine_ms: float, sdpa: float = 1.0) -> list[dict]:
    out = []
    for T in (128, 256):
        out.append(bench_record("reference", "flash", T, 1e-3 * T / 128))
        out.append(bench_record("mine", "flash", T, mine_ms * 1e-3 * T / 128, speedup_vs_sdpa_flash=sdpa))
    return out


def test_min_speedup_vs_reference_is_a_ratio_from_the_same_run(tmp_path):
    ok = verdict(tmp_path, FLASH_OK, "[components.flash]\nmin_speedup = { reference = 0.8 }\n",
                 benchmarks=speed_benchmarks(mine_ms=1.25))  # reference 1 ms, mine 1.25 ms: 0.8x
    c = check(ok, "flash speed vs reference")
    assert c.ok and "geometric mean 0.80× ≥ 0.8× over 2 benchmark(s)" == c.detail
    slow = verdict(tmp_path, FLASH_OK, "[components.flash]\nmin_speedup = { reference = 0.8 }\n",
                   benchmarks=speed_benchmarks(mine_ms=2.0))
    assert not check(slow, "flash speed vs reference").ok and "0.50× < 0.8×" in check(slow, "flash speed vs reference").detail


def test_min_speedup_against_another_baseline_uses_the_benchmarks_own_ratio(tmp_path):
    policy = "[components.flash]\nmin_speedup = { sdpa_flash = 0.5 }\n"
    assert check(verdict(tmp_path, FLASH_OK, policy, speed_benchmarks(1.0, sdpa=0.6)), "flash speed vs sdpa_flash").ok
    assert not check(verdict(tmp_path, FLASH_OK, policy, speed_benchmarks(1.0, sdpa=0.4)), "flash speed vs sdpa_flash").ok


def test_speed_of_a_non_conformant_component_does_not_count(tmp_path):
    tests = FLASH_OK + [test_record("mine", "flash", "test_overflow", "failed")]
    v = verdict(tmp_path, tests, "[components.flash]\nmin_speedup = { reference = 0.5 }\n", speed_benchmarks(0.5))
    c = check(v, "flash speed vs reference")
    assert not c.ok and "did not pass conformance" in c.detail


def test_min_speedup_without_benchmarks_is_a_warning_not_a_failure(tmp_path):
    """Nothing measured (a CPU run): the rule is not applied, a warn line says so, its points are not earned."""
    v = verdict(tmp_path, FLASH_OK, "[components.flash]\npoints = 1\nmin_speedup = { reference = 0.5 }\n"
                                    "speed_points = 2\n")
    assert v.passed and [c.rule for c in v.checks] == ["complete", "integrity"]
    assert len(v.warnings) == 1 and v.warnings[0].startswith("flash speed vs reference: not measured: no benchmark of "
                                                             "flash measured against reference")
    assert "its 2 speed points not earned" in v.warnings[0]
    assert "  warn  flash speed vs reference: not measured" in v.text() and "FAIL" not in v.text()
    assert (v.score, v.max_score) == (1.0, 3.0)


@pytest.mark.parametrize("where", ["component", "gate"])
def test_unmeasured_fail_makes_a_missing_measurement_fail_the_gate(tmp_path, where):
    policy = ("[components.flash]\nmin_speedup = { reference = 0.5 }\nunmeasured = 'fail'\n" if where == "component"
              else "[gate]\nunmeasured = 'fail'\n[components.flash]\nmin_speedup = { reference = 0.5 }\n")
    v = verdict(tmp_path, FLASH_OK, policy)
    c = check(v, "flash speed vs reference")
    assert not c.ok and not v.passed and v.warnings == []
    assert c.detail.startswith("not measured: no benchmark of flash") and '(unmeasured = "fail")' in c.detail
    measured = verdict(tmp_path, FLASH_OK, policy, speed_benchmarks(1.0))
    assert check(measured, "flash speed vs reference").ok and measured.passed


def test_speed_points_are_earned_only_when_the_speed_rules_hold(tmp_path):
    policy = "[components.flash]\npoints = 10\nmin_speedup = { reference = 0.8 }\nspeed_points = 5\n"
    fast = verdict(tmp_path, FLASH_OK, policy, speed_benchmarks(1.0))
    slow = verdict(tmp_path, FLASH_OK, policy, speed_benchmarks(2.0))
    assert fast.scores["flash"].score == pytest.approx(15.0) and slow.scores["flash"].score == pytest.approx(10.0)


def test_a_missing_feature_is_not_called_a_conformance_failure(tmp_path):
    """Every flash test missing: no speed to measure (a warning), never "did not pass conformance"."""
    tests = [test_record("mine", "flash", f"test_{i}", "missing", ["flash.flash_attention"],
                         "NotImplementedError: flash.flash_attention") for i in range(3)]
    v = verdict(tmp_path, tests, "[components.flash]\nmin_speedup = { reference = 0.5 }\n", speed_benchmarks(1.0))
    assert v.passed and "did not pass conformance" not in v.text()
    assert v.warnings == ["flash speed vs reference: not measured: no test of flash passed (3 missing): nothing to "
                          "time; not applied"]


EXTRA = "[components.posenc]\npoints = 10\n[components.flash]\nextra_credit = true\npoints = 5\n" \
        "min_speedup = { reference = 0.8 }\nspeed_points = 5\n"


def test_extra_credit_adds_points_beyond_the_maximum(tmp_path):
    fast = verdict(tmp_path, PASSING + FLASH_OK, EXTRA, speed_benchmarks(1.0))
    assert fast.passed and (fast.score, fast.max_score, fast.extra_score, fast.extra_max) == (20.0, 10.0, 10.0, 10.0)
    assert check(fast, "flash speed vs reference (extra credit)").ok
    assert fast.text().splitlines()[1] == "score 20 / 10 (10 of 10 extra-credit points)"
    assert "  +     flash (extra credit): 1/1 passed: 10 of 10 points" in fast.text()


def test_extra_credit_never_fails_the_gate(tmp_path):
    """Slow, wrong, missing or unmeasured: the bonus is not earned, and the gate still passes."""
    slow = verdict(tmp_path, PASSING + FLASH_OK, EXTRA, speed_benchmarks(2.0))
    c = check(slow, "flash speed vs reference (extra credit)")
    assert not c.ok and c.bonus and c.detail.endswith(": not earned") and slow.passed
    assert "  -     flash speed vs reference (extra credit): geometric mean 0.50× < 0.8×" in slow.text()
    assert (slow.score, slow.max_score) == (15.0, 10.0)
    wrong = verdict(tmp_path, PASSING + FLASH_OK + [test_record("mine", "flash", "test_overflow", "failed")], EXTRA,
                    speed_benchmarks(1.0))
    assert wrong.passed and wrong.extra_score == pytest.approx(2.5)
    assert "did not pass conformance (1 failed)" in check(wrong, "flash speed vs reference (extra credit)").detail
    unmeasured = verdict(tmp_path, PASSING + FLASH_OK, EXTRA)
    assert unmeasured.passed and unmeasured.extra_score == 5.0
    assert unmeasured.warnings == ["flash speed vs reference (extra credit): not measured: no benchmark of flash "
                                   "measured against reference in these results (benchmarks: --fmspec-bench, on a "
                                   "device flash supports); extra credit not earned"]
    gated = verdict(tmp_path, PASSING, "[gate]\nmin_score = 1.0\n" + EXTRA)  # no flash at all: 10/10 still passes
    assert gated.passed and check(gated, "score").ok


def test_shipped_course_policy_passes_the_reference_on_a_cpu_only_run():
    """course_cpu.json: the reference on every course component, on a CPU (no CUDA: flash's GPU tests
    skipped, no benchmark). Full marks of the 90, the flash bonus for its tests, a warn line for its speed."""
    results = tb.Results(tb.load_runs([DATA / "course_cpu.json"]))
    assert set(results.tests["component"]) == set(gate.load_policy(POLICIES / "course.toml").components)
    v = gate.evaluate(results, gate.load_policy(POLICIES / "course.toml"))
    assert v.candidate == "reference" and v.passed, v.text()
    assert (v.score, v.max_score, v.extra_score, v.extra_max) == (95.0, 90.0, 5.0, 10.0)
    assert "FAIL" not in v.text() and "did not pass conformance" not in v.text()
    assert any(w.startswith("flash speed vs reference (extra credit): not measured") for w in v.warnings)
    assert v.scores["flash"].counts.get("skipped", 0) > 0  # the GPU tests: set apart, not counted
    assert v.scores["flash"].counted == v.scores["flash"].counts["passed"]


def test_an_import_error_fails_the_gate_with_its_message(tmp_path):
    path = write_results(tmp_path, PASSING)
    doc = json.loads(path.read_text())
    doc["candidates"][0]["error"] = "ModuleNotFoundError: No module named 'numpyy'"
    save(path, doc)
    v = gate.evaluate(tb.Results(tb.load_runs([path])), gate.load_policy(write_policy(tmp_path, "[components.posenc]\n")))
    assert not v.passed and check(v, "import").detail == ("the candidate could not be imported: ModuleNotFoundError: "
                                                          "No module named 'numpyy'")


# ------------------------------------------------------------------------------------- candidate, policy
def test_candidate_defaults_to_the_one_that_is_not_the_reference(tmp_path):
    v = verdict(tmp_path, FLASH_OK, "[components.flash]\nrequired = true\n", candidate=None)
    assert v.candidate == "mine"


def test_ambiguous_or_unknown_candidate_is_an_error(tmp_path):
    tests = FLASH_OK + [test_record("yours", "flash", "test_equal", "passed")]
    with pytest.raises(gate.PolicyError, match="say which with --candidate"):
        verdict(tmp_path, tests, "[components.flash]\nrequired = true\n", candidate=None)
    with pytest.raises(gate.PolicyError, match="'nobody' is not in these results"):
        verdict(tmp_path, tests, "[components.flash]\nrequired = true\n", candidate="nobody")


@pytest.mark.parametrize("text, error", [
    ("[components.atention]\nrequired = true\n", "unknown component 'atention'"),
    ("[components.posenc]\nrequird = true\n", "unknown key components.posenc.requird"),
    ("[components.posenc]\nrequired = 'yes'\n", "components.posenc.required has the wrong type"),
    ('[components.posenc]\nfeatures = ["attention.sparse"]\n', "is not a feature of posenc"),
    ("[components.flash]\nspeed_points = 5\n", "speed_points needs min_speedup"),
    ("[components.flash]\nmin_speedup = { reference = 0 }\n", "must be a positive number"),
    ("[components.flash]\nextra_credit = true\nrequired = true\n", "extra credit cannot be required"),
    ("[components.flash]\nextra_credit = true\nmin_speedup = { reference = 1 }\nunmeasured = 'fail'\n",
     "contradicts extra_credit"),
    ("[components.flash]\nmin_speedup = { reference = 1 }\nunmeasured = 'error'\n", "must be one of warn, fail"),
    ("[components.flash]\nunmeasured = 'fail'\n", "unmeasured applies to min_speedup"),
    ("[gate]\nunmeasured = 'strict'\n[components.posenc]\n", "gate.unmeasured must be one of warn, fail"),
    ("[gate]\nmin_score = 60\n[components.posenc]\npoints = 1\n", "between 0 and 1"),
    ("[gate]\nvisibility = 'everyone'\n[components.posenc]\n", "gate.visibility must be one of"),
    ("[gates]\n[components.posenc]\n", "unknown table(s) gates"),
    ("[gate]\nname = 'x'\n", "must name at least one component"),
    ("[components.posenc\n", "not valid TOML"),
], ids=["unknown-component", "unknown-key", "wrong-type", "foreign-feature", "speed-points", "zero-speedup",
        "extra-required", "extra-unmeasured-fail", "unmeasured-value", "unmeasured-no-speed", "gate-unmeasured",
        "score-percent", "visibility", "unknown-table", "no-components", "bad-toml"])
def test_bad_policy_is_a_clear_error(tmp_path, text, error):
    with pytest.raises(gate.PolicyError, match=error.replace("(", r"\(").replace(")", r"\)")):
        gate.load_policy(write_policy(tmp_path, text))


@pytest.mark.parametrize("name", ["course.toml", "team.toml"])
def test_sample_policies_load(name):
    policy = gate.load_policy(POLICIES / name)
    assert policy.components and not policy.allow_partial


def test_verdict_text_lists_every_rule(tmp_path):
    tests = PASSING + [test_record("mine", "posenc", "test_c", "failed")]
    text = verdict(tmp_path, tests, "[gate]\nname = 'demo'\n[components.posenc]\nrequired = true\n").text()
    assert text.startswith("fmspec gate: FAILED: candidate 'mine', policy 'demo'")
    assert "  ok    complete:" in text and "  FAIL  posenc required: 1 failed (test_c)" in text


# -------------------------------------------------------------------------------------------------- CLI
def test_cli_gate_exit_status_follows_the_verdict(tmp_path, capsys):
    good = write_results(tmp_path, PASSING, name="good.json")
    bad = write_results(tmp_path, PASSING + [test_record("mine", "posenc", "test_c", "failed")], name="bad.json")
    policy = write_policy(tmp_path, "[components.posenc]\nrequired = true\n")
    assert cli.main(["gate", str(good), "--policy", str(policy)]) == 0
    assert "fmspec gate: PASSED" in capsys.readouterr().out
    assert cli.main(["gate", str(bad), "--policy", str(policy)]) == 1
    assert "FAIL  posenc required" in capsys.readouterr().out


def test_a_results_file_edited_after_the_run_fails_the_gate(tmp_path, capsys):
    """A failure turned into a pass after the run no longer matches the file's digest: the gate fails it,
    whatever the policy, and says which file; re-indenting a file keeps its digest valid."""
    path = write_results(tmp_path, [test_record("mine", "posenc", "test_a", "failed")])
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(doc, indent=4))  # the same document, laid out differently
    policy = write_policy(tmp_path, "[gate]\nallow_partial = true\n[components.posenc]\n")
    v = gate.evaluate(tb.Results(tb.load_runs([path])), gate.load_policy(policy))
    assert check(v, "integrity").ok
    doc["tests"][0]["outcome"] = "passed"
    path.write_text(json.dumps(doc))
    v = gate.evaluate(tb.Results(tb.load_runs([path])), gate.load_policy(policy))
    assert not v.passed and check(v, "integrity").detail.startswith("edited after the run or cut short: r.json")
    assert cli.main(["gate", str(path), "--policy", str(policy)]) == 1
    assert "r.json: edited after the run" in capsys.readouterr().err


@pytest.mark.parametrize("seal", ["unsigned", "other key"])
def test_a_file_that_cannot_be_verified_warns_unless_signatures_are_required(tmp_path, capsys, seal):
    """No digest (an older fmspec), or another machine's key: a warn line; --require-signed makes it fail."""
    path = write_results(tmp_path, PASSING)
    doc = json.loads(path.read_text())
    if seal == "unsigned":
        del doc["integrity"]
    else:
        doc["integrity"] = integrity.sign(doc, b"another grader's key")
    path.write_text(json.dumps(doc))
    policy = write_policy(tmp_path, "[components.posenc]\nrequired = true\n")
    v = gate.evaluate(tb.Results(tb.load_runs([path])), gate.load_policy(policy))
    assert v.passed and v.warnings == [f"integrity: cannot be verified here: r.json ({seal}) (--require-signed fails it)"]
    assert cli.main(["gate", str(path), "--policy", str(policy)]) == 0
    assert cli.main(["gate", str(path), "--policy", str(policy), "--require-signed"]) == 1
    assert f"FAIL  integrity: not signed with this machine's key: r.json ({seal})" in capsys.readouterr().out


def test_cli_gate_with_unknown_component_in_policy_exits_2(tmp_path, capsys):
    good = write_results(tmp_path, PASSING)
    policy = write_policy(tmp_path, "[components.posenk]\nrequired = true\n")
    assert cli.main(["gate", str(good), "--policy", str(policy)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown component 'posenk'" in err[0]


def test_cli_gate_missing_policy_exits_2(tmp_path, capsys):
    good = write_results(tmp_path, PASSING)
    assert cli.main(["gate", str(good), "--policy", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml: cannot read" in capsys.readouterr().err


def test_cli_gate_on_recorded_benchmarks(capsys):
    data = ROOT / "tests" / "data" / "results"
    code = cli.main(["gate", str(data / "bench_h100.json"), "--policy", str(POLICIES / "team.toml"), "--candidate", "mine"])
    out = capsys.readouterr().out
    assert code == 1 and "flash speed vs reference: geometric mean 0.82× < 0.95×" in out


# --------------------------------------------------------------------------------------------------- class
def submission(tmp_path: Path, who: str, tests: list[dict], name: str = "mine", benchmarks=()) -> Path:
    """One student's results file: their candidate, called ``name``, loaded from subs/<who>/<name>."""
    tests = [{**t, "candidate": name, "nodeid": t["nodeid"].replace("[mine", f"[{name}")} for t in tests]
    path = write_results(tmp_path, tests, benchmarks, name=f"{who}.json")
    doc = json.loads(path.read_text())
    for c in doc["candidates"]:
        if c["name"] == name:
            c["source"] = f"path /course/subs/{who}/{name}"
    return save(path, doc)


CLASS_POLICY = "[gate]\nmin_score = 0.5\n[components.posenc]\nrequired = true\npoints = 10\n" \
               "[components.flash]\npoints = 10\nmin_speedup = { reference = 0.8 }\n"


def class_files(tmp_path: Path) -> list[Path]:
    return [submission(tmp_path, "alice", PASSING + FLASH_OK, benchmarks=speed_benchmarks(1.0)),
            submission(tmp_path, "bob", PASSING + [test_record("mine", "posenc", "test_c", "failed"),
                                                   test_record("mine", "flash", "test_equal", "passed")]),
            submission(tmp_path, "carol", [test_record("mine", "posenc", "test_a", "passed")], name="carol")]


def test_same_name_from_different_paths_are_different_candidates(tmp_path):
    """alice and bob both submit a candidate called mine: two candidates, named by path, never merged."""
    results = tb.Results(tb.load_runs(class_files(tmp_path)))
    subs = gate.subjects(results)
    assert [s.name for s in subs] == ["alice/mine", "reference", "bob/mine", "carol"]
    assert [e.label for e in results.entries] == [s.name for s in subs]  # the report's rows: the same names
    alice = gate.evaluate(results, gate.load_policy(write_policy(tmp_path, CLASS_POLICY)), "alice/mine")
    bob = gate.evaluate(results, gate.load_policy(write_policy(tmp_path, CLASS_POLICY)), "bob/mine")
    assert alice.passed and check(alice, "posenc required").detail == "2/2 passed"
    assert not bob.passed and check(bob, "posenc required").detail == "1 failed (test_c)"
    with pytest.raises(gate.PolicyError, match=r"'mine' names 2 submissions in these results \(alice/mine, bob/mine\)"):
        gate.choose(results, "mine")


def test_class_table_has_a_row_per_candidate(tmp_path):
    results = tb.Results(tb.load_runs(class_files(tmp_path)))
    rows = gate.class_table(results, gate.load_policy(write_policy(tmp_path, CLASS_POLICY)))
    assert [(r.name, r.passed, r.failed) for r in rows] == [("alice/mine", True, []),
                                                            ("bob/mine", False, ["posenc"]),
                                                            ("carol", True, [])]
    alice, bob, carol = rows
    assert (alice.score, alice.max_score, alice.percent) == (20.0, 20.0, 100.0)
    assert alice.speedups == {"flash vs reference": pytest.approx(1.0)} and carol.speedups == {"flash vs reference": None}
    assert bob.files == [str(tmp_path / "bob.json")] and not bob.partial
    assert bob.as_dict() == {"name": "bob/mine", "score": pytest.approx(16.6667), "max_score": 20.0, "percent": 83.33,
                             "extra_credit": 0.0, "verdict": "failed", "failed": "posenc", "partial": False,
                             "files": str(tmp_path / "bob.json"), "speed flash vs reference": None}
    csv_lines = gate.class_csv(rows).splitlines()
    assert csv_lines[0] == "name,score,max_score,percent,extra_credit,verdict,failed,partial,files,speed flash vs reference"
    assert len(csv_lines) == 4 and csv_lines[2].startswith("bob/mine,16.6667,20.0,83.33,0.0,failed,posenc,False,")
    text = gate.class_text(rows, gate.load_policy(write_policy(tmp_path, CLASS_POLICY))).splitlines()
    assert text[0].startswith("fmspec gate: 2 of 3 candidates passed, policy 'policy'")
    assert text[1].split() == ["PASSED", "alice/mine", "20/20", "(100.0%)", "flash", "vs", "reference", "1.00×"]
    assert text[2].split()[:5] == ["FAILED", "bob/mine", "16.67/20", "(83.3%)", "failed:"]
    assert "1 warning" in text[2]  # bob's flash speed: not measured


@pytest.mark.parametrize("flag", [[], ["--all"]], ids=["several-candidates", "all"])
def test_cli_gate_over_a_class_prints_a_line_each_and_fails_if_one_fails(tmp_path, capsys, flag):
    files = [str(p) for p in class_files(tmp_path)]
    policy = str(write_policy(tmp_path, CLASS_POLICY))
    assert cli.main(["gate", *files, "--policy", policy, *flag]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[0].startswith("fmspec gate: 2 of 3 candidates passed")
    assert [line.split()[:2] for line in out[1:]] == [["PASSED", "alice/mine"], ["FAILED", "bob/mine"],
                                                      ["PASSED", "carol"]]
    assert cli.main(["gate", files[0], files[2], "--policy", policy, *flag]) == 0
    assert cli.main(["gate", *files, "--policy", policy, "--candidate", "alice/mine"]) == 0
    assert capsys.readouterr().out.splitlines()[-len(gate.evaluate(
        tb.Results(tb.load_runs(files)), gate.load_policy(policy), "alice/mine").checks) - 1].startswith("score")


def test_cli_gate_all_verbose_adds_every_verdict(tmp_path, capsys):
    files = [str(p) for p in class_files(tmp_path)]
    assert cli.main(["gate", *files, "--policy", str(write_policy(tmp_path, CLASS_POLICY)), "--all", "-v"]) == 1
    out = capsys.readouterr().out
    assert out.count("fmspec gate: PASSED: candidate") == 2 and "fmspec gate: FAILED: candidate 'bob/mine'" in out
    assert cli.main(["gate", *files, "--policy", str(POLICIES / "course.toml"), "--all", "--candidate", "x"]) == 2


def test_cli_gate_output_into_a_closed_pipe_is_quiet(tmp_path):
    """``fmspec gate ... | head``: a reader gone before the verdict is written ends the output, not in a traceback."""
    files = [str(p) for p in class_files(tmp_path)]
    policy = str(write_policy(tmp_path, CLASS_POLICY))
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte: every write raises BrokenPipeError
    try:
        proc = subprocess.run([sys.executable, "-m", "reports", "gate", *files, "--policy", policy, "-v"], cwd=ROOT,
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == 1 and proc.stderr == ""


@pytest.mark.parametrize("flag", [[], ["--all"]], ids=["default", "all"])
def test_cli_gate_on_results_without_candidates_exits_2(tmp_path, capsys, flag):
    empty = write_results(tmp_path, [])
    assert cli.main(["gate", str(empty), "--policy", str(POLICIES / "course.toml"), *flag]) == 2
    assert "hold no candidate" in capsys.readouterr().err
