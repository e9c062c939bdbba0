"""``fmspec grade`` on a generated class: two submissions in folders of the same name, one that crashes at
import, one that hangs, one with a bug, two correct; then a resumed run, and the same class in shards."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmspec import grade, profiles

POLICY = """
[gate]
name = "posenc only"

[components.posenc]
required = true
points = 10
"""

CORRECT = "from . import posenc\n"
POSENC = '''
import torch


def sinusoidal(num_positions, dim, base=10000.0):
    if not isinstance(num_positions, int) or isinstance(num_positions, bool) or num_positions < 0:
        raise ValueError("num_positions must be an int >= 0")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError("dim must be an int >= 1")
    if not base > 1.0:
        raise ValueError("base must be > 1")
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    angle = pos * base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    out = torch.empty(num_positions, dim, dtype=torch.float64)
    out[:, 0::2] = torch.sin(angle)
    out[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return out
'''
CLASS = {
    "alice/mine/__init__.py": CORRECT, "alice/mine/posenc.py": POSENC,
    "bob/mine/__init__.py": CORRECT, "bob/mine/posenc.py": POSENC.replace("torch.sin(angle)", "torch.sin(angle + 1e-3)"),
    "carol/mine/__init__.py": "raise RuntimeError('broken at import')\n",
    "dave/mine/__init__.py": "import time\n\nwhile True:  # hangs at import: only the budget ends it\n    time.sleep(0.05)\n",
    "erin.py": "from fmspec.reference import posenc\n",
}
# wrong at one input only: (64, 63), an explicit @example of the posenc suite that random draws hardly reach
ONLY_AT_THE_EXAMPLE = POSENC + '''

_right = sinusoidal


def sinusoidal(num_positions, dim, base=10000.0):
    out = _right(num_positions, dim, base)
    if (num_positions, dim) == (64, 63):
        out[-1, -1] += 1e-3
    return out
'''


def make_class(root: Path) -> Path:
    for name, text in CLASS.items():
        path = root / "subs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "policy.toml").write_text(POLICY)
    return root / "subs"


def run_grade(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmspec", "grade", "subs", "--policy", "policy.toml",
                           "--components", "posenc", "--timeout", "1", "--seed", "7", "--no-progress",
                           *(args if "--budget" in args else (*args, "--budget", "300"))],
                          cwd=root, capture_output=True, text=True, timeout=900)


def roster(out: Path) -> dict[str, dict]:
    with open(out / "class.csv") as fh:
        return {row["name"]: row for row in csv.DictReader(fh)}


def test_a_class_is_graded_apart_with_one_row_a_submission(tmp_path):
    make_class(tmp_path)
    proc = run_grade(tmp_path, "--out", "out", "--budget", "60")  # dave hangs at import: the budget ends him
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = roster(tmp_path / "out")
    assert sorted(rows) == ["alice", "bob", "carol", "dave", "erin"]
    assert rows["alice"]["verdict"] == "passed" and rows["alice"]["failed"] == "0"
    assert rows["erin"]["verdict"] == "passed"
    assert rows["bob"]["verdict"] == "failed" and rows["bob"]["failed_components"] == "posenc"
    assert rows["carol"]["status"] == "import error" and rows["carol"]["verdict"] == "failed"
    assert rows["dave"]["status"].startswith("timed out") and rows["dave"]["verdict"] != "passed"
    # one results file and one Gradescope file each, named after the submission, not after its folder "mine"
    # (dave hung while being imported: killed before pytest wrote anything)
    assert not (tmp_path / "out" / "results" / "dave.json").exists() and rows["dave"]["verdict"] == "no results"
    for name in ("alice", "bob", "carol", "erin"):
        doc = json.loads((tmp_path / "out" / "results" / f"{name}.json").read_text())
        assert [c["name"] for c in doc["candidates"]] == [name]
        assert doc["run"]["seed"] == "hidden" and "--fmspec-isolate" in doc["run"]["args"]  # isolated by default
        assert (tmp_path / "out" / "gradescope" / f"{name}.json").exists()
    report = (tmp_path / "out" / "report.html").read_text()
    assert all(name in report for name in ("alice", "bob", "carol", "erin"))
    assert (tmp_path / "out" / "seed").read_text().strip() == "7"
    assert "alice  passed" in proc.stdout


def test_an_in_process_class_gets_the_same_verdicts(tmp_path):
    """--in-process: every candidate inside its pytest process (trusted code, faster); the honest and the
    buggy submissions get the verdicts they get isolated."""
    make_class(tmp_path)
    proc = run_grade(tmp_path, "--out", "out", "--budget", "60", "--in-process")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = roster(tmp_path / "out")
    assert rows["alice"]["verdict"] == "passed" and rows["erin"]["verdict"] == "passed"
    assert rows["bob"]["verdict"] == "failed" and rows["bob"]["failed_components"] == "posenc"
    assert rows["carol"]["verdict"] == "failed" and rows["dave"]["verdict"] != "passed"
    assert "--fmspec-isolate" not in json.loads((tmp_path / "out" / "results" / "alice.json").read_text())["run"]["args"]


def test_grading_runs_the_explicit_examples_whatever_the_example_count(tmp_path):
    """However few examples the hidden profile draws, every explicit @example runs: frank's bug shows only
    at the suite's worked input (64 positions, 63 dims), which random draws miss, and fails him."""
    root = tmp_path
    for name, text in {"frank/mine/__init__.py": CORRECT, "frank/mine/posenc.py": ONLY_AT_THE_EXAMPLE,
                       "alice/mine/__init__.py": CORRECT, "alice/mine/posenc.py": POSENC}.items():
        (root / "subs" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "subs" / name).write_text(text)
    (root / "policy.toml").write_text(POLICY)
    proc = run_grade(root, "--out", "out", "--timeout", "60")  # time to shrink and report the failure
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = roster(root / "out")
    assert rows["alice"]["verdict"] == "passed"
    assert rows["frank"]["verdict"] == "failed" and rows["frank"]["failed_components"] == "posenc"
    doc = json.loads((root / "out" / "results" / "frank.json").read_text())
    assert doc["run"]["profile"] == "hidden"
    failed = {t["property"] for t in doc["tests"] if t["outcome"] == "failed"}
    assert "test_matches_closed_form" in failed, failed


def test_the_grading_profile_draws_afresh_and_keeps_every_explicit_example():
    """The hidden profile (what grading runs): random examples (seeded per run at collection), no example
    database, HIDDEN_EXAMPLES a property (fmspec/profiles.py says why that many), explicit examples first."""
    from hypothesis import Phase

    hidden = profiles._profiles()["hidden"]
    assert hidden.max_examples == profiles.HIDDEN_EXAMPLES
    assert not hidden.derandomize and hidden.database is None
    assert Phase.explicit in hidden.phases and Phase.generate in hidden.phases


def test_throughput_benchmark_makes_its_class_and_keeps_the_hand_written_text(tmp_path):
    """benchmarks/grade_throughput.py: half complete submissions, a quarter partial, a quarter buggy; it
    rewrites only the generated part of its Markdown file."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "grade_throughput.py"
    spec = importlib.util.spec_from_file_location("grade_throughput", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.generate(tmp_path / "subs", 8)
    kinds = [bench.kind_of(s.name) for s in grade.discover(tmp_path / "subs")]
    assert sorted(kinds) == ["buggy"] * 2 + ["full"] * 4 + ["partial"] * 2
    md = tmp_path / "throughput.md"
    md.write_text(f"# by hand\n\n{bench.BEGIN}\nold numbers\n{bench.END}\n\nmore by hand\n")
    bench.write_markdown(md, f"{bench.BEGIN}\nnew numbers\n{bench.END}")
    assert md.read_text() == f"# by hand\n\n{bench.BEGIN}\nnew numbers\n{bench.END}\n\nmore by hand\n"


def test_a_rerun_skips_unchanged_submissions_and_regrades_changed_ones(tmp_path):
    make_class(tmp_path)
    (tmp_path / "subs" / "dave").rename(tmp_path / "dave-out-of-class")  # keep this test fast
    assert run_grade(tmp_path, "--out", "out").returncode == 0
    (tmp_path / "subs" / "bob" / "mine" / "posenc.py").write_text(POSENC)  # bob fixes his bug
    proc = run_grade(tmp_path, "--out", "out")
    assert "4 submission(s), 1 to grade" in proc.stderr, proc.stderr
    rows = roster(tmp_path / "out")
    assert rows["bob"]["verdict"] == "passed" and rows["alice"]["status"] == "skipped (unchanged)"


def test_the_policy_chooses_the_suites_and_an_edited_results_file_is_graded_again(tmp_path):
    """Without --components only what the policy grades runs (posenc here); a results file edited after its
    run no longer verifies, so a rerun grades that submission again instead of trusting the file."""
    make_class(tmp_path)
    for name in ("carol", "dave", "erin.py"):
        (tmp_path / "subs" / name).rename(tmp_path / f"{name}-out-of-class")
    cmd = [sys.executable, "-m", "fmspec", "grade", "subs", "--policy", "policy.toml", "--timeout", "5",
           "--seed", "7", "--no-progress", "--out", "out"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    bob = tmp_path / "out" / "results" / "bob.json"
    doc = json.loads(bob.read_text())
    assert {t["component"] for t in doc["tests"]} == {"posenc"}
    assert roster(tmp_path / "out")["bob"]["verdict"] == "failed"
    for t in doc["tests"]:  # bob "fixes" his results instead of his code
        t["outcome"] = "passed"
    bob.write_text(json.dumps(doc))
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert "2 submission(s), 1 to grade" in proc.stderr, proc.stderr
    assert roster(tmp_path / "out")["bob"]["verdict"] == "failed"


def test_shards_cover_the_class_once_and_merge(tmp_path):
    make_class(tmp_path)
    subs = grade.discover(tmp_path / "subs")
    shares = [grade.shard(subs, f"{i}/3") for i in (1, 2, 3)]
    names = sorted(s.name for share in shares for s in share)
    assert names == sorted(s.name for s in subs), "every submission in exactly one shard"
    (tmp_path / "subs" / "dave").rename(tmp_path / "dave-out-of-class")
    for i in (1, 2, 3):
        assert run_grade(tmp_path, "--out", f"shard{i}", "--shard", f"{i}/3").returncode == 0
    merged = tmp_path / "merged" / "results"
    merged.mkdir(parents=True)
    for i in (1, 2, 3):
        for f in (tmp_path / f"shard{i}" / "results").glob("*.json"):
            f.rename(merged / f.name)
    proc = run_grade(tmp_path, "--out", "merged")
    assert "4 submission(s), 0 to grade" in proc.stderr, proc.stderr
    assert sorted(roster(tmp_path / "merged")) == ["alice", "bob", "carol", "erin"]


@pytest.mark.parametrize("spec, message", [("0/3", "between 1 and N"), ("x", "expected I/N")])
def test_bad_shard_is_a_one_line_error(tmp_path, spec, message):
    make_class(tmp_path)
    proc = run_grade(tmp_path, "--out", "out", "--shard", spec)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_submissions_with_the_same_name_are_refused(tmp_path):
    make_class(tmp_path)
    (tmp_path / "list.txt").write_text("subs/alice/mine\nsubs/bob/mine\n")
    proc = subprocess.run([sys.executable, "-m", "fmspec", "grade", "list.txt", "--components", "posenc"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "two submissions are named 'mine'" in proc.stderr, proc.stderr
