"""Exports validated against their formats: Gradescope results.json, JUnit XML, a Markdown summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fmspec.reports import cli, export, gate
from fmspec.reports import tables as tb

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "results"
INPUTS = [DATA / n for n in ("conformance.json", "mutants.json", "truncated.json", "bench_h100.json")]
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}


@pytest.fixture(scope="module")
def results() -> tb.Results:
    return tb.Results(tb.load_runs(INPUTS))


# ---------------------------------------------------------------------------------------------- gradescope
def check_gradescope(doc: dict) -> None:
    """The autograder specification's results.json: a score (or one per test), tests with the keys it reads."""
    json.dumps(doc)  # plain JSON
    assert isinstance(doc["score"], (int, float))
    assert isinstance(doc["execution_time"], int) and isinstance(doc["output"], str)
    assert doc["visibility"] in VISIBILITY and doc["stdout_visibility"] in VISIBILITY
    assert doc["tests"], "at least one test"
    for t in doc["tests"]:
        assert set(t) >= {"score", "max_score", "name", "output", "visibility", "status"}
        assert isinstance(t["score"], (int, float)) and isinstance(t["max_score"], (int, float))
        if "extra credit" in t["tags"]:  # a bonus: worth nothing of the maximum, whatever it earned
            assert t["max_score"] == 0 and t["score"] >= 0 and "extra credit" in t["name"]
        else:
            assert 0 <= t["score"] <= t["max_score"] + 1e-9
        assert t["status"] in ("passed", "failed") and t["visibility"] in VISIBILITY
        assert isinstance(t["name"], str) and isinstance(t["output"], str) and isinstance(t["tags"], list)
    assert doc["score"] == pytest.approx(sum(t["score"] for t in doc["tests"]))
    for entry in doc["leaderboard"]:
        assert set(entry) <= {"name", "value", "order"} and isinstance(entry["name"], str)
        assert isinstance(entry["value"], (int, float, str)) and entry.get("order", "desc") in ("asc", "desc")


def test_gradescope_without_policy_scores_one_point_per_counted_test(results):
    doc = export.gradescope(results, candidate="posenc_float32")
    check_gradescope(doc)
    posenc = next(t for t in doc["tests"] if t["name"].startswith("posenc"))
    # in mutants.json and in truncated.json: each test counts once, as the later file has it
    assert posenc["max_score"] == 13 and posenc["score"] == 1 and posenc["status"] == "failed"
    assert "reproduce: pytest 'suites/test_posenc.py::" in posenc["output"]
    assert doc["extra_data"]["partial"] is True  # its second file is truncated


def test_gradescope_with_policy_uses_its_points_visibility_and_verdict(results):
    policy = gate.load_policy(ROOT / "reports" / "policies" / "course.toml")
    doc = export.gradescope(results, policy, candidate="torch_native")
    check_gradescope(doc)
    assert {t["name"].split(":")[0] for t in doc["tests"]} == set(policy.components)
    assert sum(t["max_score"] for t in doc["tests"]) == pytest.approx(policy.max_points)
    assert all(t["visibility"] == "after_due_date" for t in doc["tests"])
    assert doc["output"].startswith("fmspec gate: FAILED: candidate 'torch_native'")
    posenc = next(t for t in doc["tests"] if t["name"].startswith("posenc"))
    assert posenc["score"] == 5 and posenc["status"] == "passed"


def test_gradescope_leaderboard_comes_from_the_benchmarks(results):
    doc = export.gradescope(results, candidate="mine")
    check_gradescope(doc)
    board = {e["name"]: e for e in doc["leaderboard"]}
    assert board["flash × reference (NVIDIA H100 80GB HBM3)"]["value"] == pytest.approx(0.82, abs=0.01)
    assert board["flash × reference (NVIDIA H100 80GB HBM3)"]["order"] == "desc"
    assert "flash × sdpa flash (NVIDIA H100 80GB HBM3)" in board


def test_gradescope_leaves_non_conformant_speed_off_the_leaderboard(results):
    doc = export.gradescope(results, candidate="buggy")
    check_gradescope(doc)
    assert doc["leaderboard"] == []


# ------------------------------------------------------------------------------------------------- junit
def test_junit_is_well_formed_and_counts_add_up(results):
    root = ET.fromstring(export.junit(results))
    assert root.tag == "testsuites"
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    names = set()
    for suite in root:
        assert suite.tag == "testsuite"
        assert suite.get("name") not in names
        names.add(suite.get("name"))
        cases = suite.findall("testcase")
        assert int(suite.get("tests")) == len(cases) > 0
        kinds = [c[0].tag if len(c) else "passed" for c in cases]
        assert int(suite.get("failures")) == kinds.count("failure")
        assert int(suite.get("errors")) == kinds.count("error")
        assert int(suite.get("skipped")) == kinds.count("skipped")
        float(suite.get("time"))
        props = {p.get("name"): p.get("value") for p in suite.find("properties")}
        assert {"candidate", "device", "partial", "results"} <= set(props)
        for case in cases:
            assert case.get("classname").startswith("fmspec.") and case.get("name") and float(case.get("time")) >= 0
            for child in case:
                assert child.tag in ("failure", "error", "skipped") and child.get("message") is not None
        for k in totals:
            totals[k] += int(suite.get(k))
    assert {k: int(root.get(k)) for k in totals} == totals
    assert totals["failures"] == 1 + 19 + 12  # buggy, mutants.json, what truncated.json kept of it


def test_junit_failure_carries_message_example_and_reproduce(results):
    root = ET.fromstring(export.junit(results))
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_matches_closed_form[posenc_base_1000]")
    failure = case.find("failure")
    assert failure.get("message").startswith("AssertionError: pe: rel. error 0.00785")
    assert "Failing test case" in failure.text and "reproduce: pytest" in failure.text


def test_junit_missing_and_unsupported_are_skipped_with_their_kind(results):
    root = ET.fromstring(export.junit(results))
    skipped = [c.find("skipped") for c in root.iter("testcase") if c.find("skipped") is not None]
    assert skipped and all(s.get("type") == "missing" and s.get("message").startswith("missing: ") for s in skipped)


def test_junit_strips_characters_xml_cannot_hold(tmp_path):
    doc = json.loads((DATA / "mutants.json").read_text())
    doc["tests"][0].update(outcome="failed", message="E   AssertionError: \x1b[31mred\x1b[0m \x00\x07 done")
    p = tmp_path / "ctrl.json"
    p.write_text(json.dumps(doc))
    root = ET.fromstring(export.junit(tb.Results(tb.load_runs([p]))))
    messages = [f.get("message") for f in root.iter("failure")]
    assert "AssertionError: red  done" in messages


# ---------------------------------------------------------------------------------------------- markdown
def test_markdown_summary_has_the_matrix_failures_and_speed(results):
    text = export.markdown(results)
    lines = text.splitlines()
    head = lines.index("| candidate | flash | posenc | quant |")
    assert lines[head + 1] == "| --- | --- | --- | --- |"
    rows = lines[head + 2: head + 2 + len(results.entries)]
    assert all(r.startswith("| ") and r.count(" | ") == 3 for r in rows)
    assert "| posenc_float32 @ mutants | – | ❌ 1/13 (12 failed) | – |" in rows
    assert any("*(partial)*" in r for r in rows)
    assert "## Failures (32)" in text and "… and 2 more" in text
    assert "## Speed (geometric mean of speedups, same run; conformant components only)" in text
    assert "| NVIDIA H100 80GB HBM3 | flash | mine | 20 | 0.82× | 0.59× |" in text
    assert "buggy | 20" not in text


def test_markdown_with_policy_starts_with_the_verdict(results):
    policy = gate.load_policy(ROOT / "reports" / "policies" / "team.toml")
    text = export.markdown(results, policy, "mine")
    assert "**Gate: FAILED ❌** — candidate `mine`" in text
    assert "- ❌ **flash speed vs reference**: geometric mean 0.82× < 0.95× over 20 benchmark(s)" in text


def test_markdown_escapes_pipes_in_names(tmp_path):
    doc = json.loads((DATA / "mutants.json").read_text())
    for t in doc["tests"]:
        t["candidate"] = "a|b"
    p = tmp_path / "pipe.json"
    p.write_text(json.dumps(doc))
    text = export.markdown(tb.Results(tb.load_runs([p])))
    assert "| a\\|b | ❌" in text


# --------------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("fmt", ["gradescope", "junit", "markdown"])
def test_cli_export_is_byte_stable(tmp_path, fmt, capsys):
    outs = []
    for i in range(2):
        out = tmp_path / f"{i}.out"
        args = ["export", fmt, str(DATA / "mutants.json"), str(DATA / "bench_h200.json"), "-o", str(out),
                "--candidate", "mine"]
        assert cli.main(args) == 0
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0]
    if fmt == "gradescope":
        check_gradescope(json.loads(outs[0]))
    if fmt == "junit":
        ET.fromstring(outs[0])


# ------------------------------------------------------------------------------------ counts that agree
def test_gradescope_without_policy_says_what_it_scores():
    """No CUDA, no flash in the template: the name, the output and the score all say 0 of the 31 counted
    (missing counts, the 15 skipped do not); never "0/46 passed" beside a max_score of 31."""
    results = tb.Results(tb.load_runs([DATA / "missing_cpu.json"]))
    doc = export.gradescope(results, candidate="template")
    check_gradescope(doc)
    flash = next(t for t in doc["tests"] if t["tags"] == ["flash"])
    assert (flash["score"], flash["max_score"]) == (0, 31)
    assert flash["name"] == "flash: 0/31 passed (31 missing; not counted: 15 skipped)"
    assert "flash: 0/31 passed (31 missing; not counted: 15 skipped)" in doc["output"].splitlines()
    native = export.gradescope(results, candidate="torch_native")
    flash = next(t for t in native["tests"] if t["tags"] == ["flash"])
    assert (flash["score"], flash["max_score"]) == (18, 28)
    assert flash["name"] == "flash: 18/28 passed (10 missing; not counted: 3 unsupported, 15 skipped)"


def test_gradescope_with_the_course_policy_on_a_cpu_run_gives_flash_as_extra_credit():
    results = tb.Results(tb.load_runs([DATA / "course_cpu.json"]))
    policy = gate.load_policy(ROOT / "reports" / "policies" / "course.toml")
    doc = export.gradescope(results, policy)
    check_gradescope(doc)
    flash = next(t for t in doc["tests"] if t["tags"][0] == "flash")
    assert flash["tags"] == ["flash", "extra credit"] and (flash["score"], flash["max_score"]) == (5, 0)
    assert flash["name"] == "flash: 31 passed, 15 skipped (extra credit, up to 10 points)"
    assert flash["status"] == "passed" and "warn: flash speed vs reference (extra credit): not measured" in flash["output"]
    assert doc["score"] == 95 and sum(t["max_score"] for t in doc["tests"]) == 90
    assert doc["output"].startswith("fmspec gate: PASSED: candidate 'reference'")


def test_markdown_counts_skipped_tests_apart():
    text = export.markdown(tb.Results(tb.load_runs([DATA / "missing_cpu.json"])))
    assert "| template | ⚪ 0/31 (31 missing) · 15 skipped | ⚪ 0/13 (13 missing) |" in text
    assert "| torch_native | 🟡 18/31 (10 missing, 3 unsupported) · 15 skipped | ✅ 13/13 |" in text


# --------------------------------------------------------------------------------------------------- class
def class_results(tmp_path) -> list[Path]:
    """Two submissions both called ``mine`` (alice's and bob's), each in a results file of its own."""
    out = []
    for who, outcome in (("alice", "passed"), ("bob", "failed")):
        doc = json.loads((DATA / "mutants.json").read_text())
        tests = [t for t in doc["tests"] if t["candidate"] == "posenc_float32"]
        for i, t in enumerate(tests):
            t.update(candidate="mine", nodeid=t["nodeid"].replace("posenc_float32", "mine"),
                     outcome="passed" if i else outcome)
        doc.update(tests=tests, candidates=[{"name": "mine", "source": f"path /course/{who}/mine", "version": "1"}])
        p = tmp_path / f"{who}.json"
        p.write_text(json.dumps(doc))
        out.append(p)
    return out


def test_cli_export_gradescope_all_writes_one_file_per_submission(tmp_path, capsys):
    files = class_results(tmp_path)
    out = tmp_path / "gradescope"
    assert cli.main(["export", "gradescope", *map(str, files), "--all", "-o", str(out),
                     "--policy", str(ROOT / "reports" / "policies" / "course.toml")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["alice-mine.json", "bob-mine.json"]
    alice, bob = (json.loads((out / n).read_text()) for n in ("alice-mine.json", "bob-mine.json"))
    for doc in (alice, bob):
        check_gradescope(doc)
    assert alice["extra_data"]["candidate"] == "alice/mine" and bob["extra_data"]["source"] == "/course/bob/mine"
    posenc = {d["extra_data"]["candidate"]: next(t for t in d["tests"] if t["tags"] == ["posenc"]) for d in (alice, bob)}
    assert posenc["alice/mine"]["status"] == "passed" and posenc["bob/mine"]["status"] == "failed"
    assert "wrote 2 Gradescope file(s)" in capsys.readouterr().err
    assert cli.main(["export", "junit", *map(str, files), "--all", "-o", str(tmp_path / "j.xml")]) == 2


def test_markdown_with_a_policy_over_a_class_is_a_table(tmp_path):
    results = tb.Results(tb.load_runs(class_results(tmp_path)))
    text = export.markdown(results, gate.load_policy(ROOT / "reports" / "policies" / "course.toml"))
    assert "**Gate: 0 of 2 candidates passed** — policy *course: foundation-model building blocks*" in text
    assert "| candidate | verdict | score | failed | flash vs reference |\n| --- | --- | ---: | --- | ---: |" in text
    assert "| alice/mine | ❌ failed | 5/90 | attention, autodiff, bpe, layers, quant, score | – |" in text
    assert "| bob/mine | ❌ failed | 4.62/90 | attention, autodiff, bpe, layers, posenc, quant, score | – |" in text
