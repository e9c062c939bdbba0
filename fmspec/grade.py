"""``fmspec grade``: a whole class, one isolated pytest run per submission.

    fmspec grade SUBMISSIONS [--out DIR] [--policy course] [--jobs N] [--budget S] [--timeout S]
                 [--memory-limit GB] [--seed N] [--shard I/N] [--in-process] [--bench] [-- PYTEST OPTION ...]

SUBMISSIONS is a folder with one entry per submission, or a text file listing submission paths (one a
line, ``#`` comments). A submission is a candidate package folder or ``.py`` file, or a folder holding
exactly one of those (``subs/alice/mine/``): it is named after its entry (``alice``).

Every submission is graded by its own ``pytest --pyargs fmspec.suites`` process (nothing of one
submission can reach another's run), with the untrusted-grading options: the candidate in a sandboxed
process of its own (``--fmspec-isolate``; ``--in-process`` for trusted code), a hidden seed (one for the whole
class, so every student gets the same examples; kept in ``DIR/seed``, never in the results files; the
hypothesis profile ``hidden``, whose docstring says how many examples and why), a per-test timeout, a
memory limit, and a wall-clock budget for the whole submission, after which the run is killed and graded
as it stands. Runs go in parallel over the machine's cores, with a progress bar. Only the components
the policy names are run (``--components`` to choose others, ``all`` for every suite): what the policy
does not grade costs time and changes no verdict.

Written to DIR: ``results/<name>.json`` (one results file each), ``logs/<name>.txt`` (pytest's output),
``gradescope/<name>.json``, ``class.csv`` (the roster: one line a submission) and ``report.html`` (every
submission side by side). Rerunning skips a submission whose results file is complete, signed by this
grader's key and unedited (fmspec/integrity.py), and whose sources are unchanged (same SHA-256), so an
interrupted class run resumes; the verdicts require every results file to verify (the gate's
``require_signed``).

Beyond one machine, each submission is an independent job: ``--shard I/N`` grades the I-th of N
deterministic shares (I from 1); copy every shard's ``results/`` into one DIR and run ``fmspec grade``
there once more to build the class files (every submission is then found complete and skipped).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fmspec import integrity, loader

DEFAULT_BUDGET_S = 900
DEFAULT_TIMEOUT_S = 120
DEFAULT_MEMORY_GB = 8.0
CSV_FIELDS = ("name", "status", "score", "max_score", "verdict", "passed", "failed", "missing", "failed_components",
              "duration_s", "path")


class GradeError(Exception):
    """Bad input: one line for the user."""


@dataclass
class Submission:
    name: str
    path: Path  # the candidate: a package folder or a .py file
    status: str = "pending"  # graded | skipped (unchanged) | timed out | crashed | import error
    duration_s: float = 0.0
    verdict: dict = field(default_factory=dict)

    def digest(self) -> str:
        return "sha256:" + loader.source_digest(self.path).hexdigest()[:12]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("submissions", metavar="SUBMISSIONS",
                   help="a folder with one entry per submission, or a text file of submission paths")
    p.add_argument("--out", default="grading", metavar="DIR", help="where everything goes (default: ./grading)")
    p.add_argument("--policy", default="course", metavar="TOML",
                   help="the gate policy: a file or a shipped policy's name (default: course)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="submissions graded at once (default: the number of cores)")
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, metavar="S",
                   help=f"wall-clock seconds for one submission's whole run (default {DEFAULT_BUDGET_S})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"seconds for one test (pytest-timeout; default {DEFAULT_TIMEOUT_S})")
    p.add_argument("--memory-limit", type=float, default=DEFAULT_MEMORY_GB, metavar="GB",
                   help=f"address-space cap of each run (default {DEFAULT_MEMORY_GB:g})")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="the hidden seed (default: DIR/seed, else a new random one, saved there)")
    p.add_argument("--shard", default=None, metavar="I/N", help="grade only the I-th of N shares (I from 1)")
    p.add_argument("--components", default=None, metavar="A,B",
                   help="grade only these components' suites (default: the components the policy names; "
                        "'all': every suite)")
    p.add_argument("--bench", action="store_true", help="also run the benchmarks of what passed (--fmspec-bench)")
    p.add_argument("--isolate", dest="isolate", action="store_true", default=True,
                   help="the default: each candidate runs in a sandboxed process of its own (--fmspec-isolate, "
                        "docs/trust.md)")
    p.add_argument("--in-process", dest="isolate", action="store_false",
                   help="run each candidate inside its pytest process: faster, for trusted code only; needed "
                        "for GPU tests and benchmarks (CUDA does not initialise in the sandbox yet)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one line per submission instead)")
    p.add_argument("pytest_args", nargs="*", metavar="-- PYTEST OPTION",
                   help="after --: more options for each submission's pytest run")


def main(args: argparse.Namespace) -> int:
    try:
        return grade(args)
    except GradeError as exc:
        print(f"fmspec grade: error: {exc}", file=sys.stderr)
        return 2


def grade(args: argparse.Namespace) -> int:
    from fmspec import COMPONENTS

    if args.components == "all":
        args.components = ",".join(COMPONENTS)
    unknown = [c for c in (args.components or "").split(",") if c and c not in COMPONENTS]
    if unknown:
        raise GradeError(f"--components: no component {', '.join(map(repr, unknown))} (components: {', '.join(COMPONENTS)})")
    policy = _policy(args.policy)
    policy.require_signed = True  # every results file here was signed by this run: anything else was edited
    if args.components is None:  # what the policy does not grade is not run
        args.components = ",".join(c for c in COMPONENTS if c in policy.components)
    subs = shard(discover(Path(args.submissions)), args.shard)
    out = Path(args.out)
    for folder in ("results", "logs", "gradescope", "work"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    seed = _seed(out, args.seed)
    todo = [s for s in subs if not _unchanged(s, out)]
    for s in subs:
        if s not in todo:
            s.status = "skipped (unchanged)"
    print(f"fmspec grade: {len(subs)} submission(s), {len(todo)} to grade, {args.jobs} at a time, "
          f"budget {args.budget:g} s each; results in {out}/", file=sys.stderr)
    _run_all(todo, args, out, seed)
    rows = summarize(subs, out, policy)
    _write_class(rows, subs, out, policy)
    failed = [r for r in rows if r["verdict"] != "passed"]
    print(f"fmspec grade: {len(rows) - len(failed)} of {len(rows)} passed the policy; "
          f"{out / 'class.csv'}, {out / 'report.html'}", file=sys.stderr)
    return 0


def _policy(spec: str):
    """A policy file, or the name of one shipped with fmspec (``course``, ``team``)."""
    from fmspec.reports import cli as reports_cli
    from fmspec.reports import gate

    path = Path(spec)
    if not path.exists() and spec in reports_cli.shipped_policies():
        path = reports_cli.POLICIES / f"{spec}.toml"
    try:
        return gate.load_policy(path)
    except gate.PolicyError as exc:
        raise GradeError(str(exc)) from None


# ------------------------------------------------------------------------------------------- submissions
def discover(source: Path) -> list[Submission]:
    """The submissions of a folder (one per entry) or of a list file (one path a line), sorted by name."""
    if not source.exists():
        raise GradeError(f"{source}: no such folder or file")
    if source.is_dir() and not (source / "__init__.py").exists():
        entries = [p for p in sorted(source.iterdir()) if not p.name.startswith((".", "_"))]
    else:
        lines = [line.split("#", 1)[0].strip() for line in source.read_text().splitlines()]
        entries = [(source.parent / line) for line in lines if line]
    subs, seen = [], {}
    for entry in entries:
        cand = _candidate_in(entry)
        if cand is None:
            continue
        name = entry.stem if entry.suffix == ".py" else entry.name
        if name in seen:
            raise GradeError(f"two submissions are named {name!r} ({seen[name]} and {entry}): rename one")
        seen[name] = entry
        subs.append(Submission(name, cand.resolve()))
    if not subs:
        raise GradeError(f"{source}: no submissions found (a package folder or .py file per entry)")
    return sorted(subs, key=lambda s: s.name)


def _candidate_in(entry: Path) -> Path | None:
    if entry.is_file():
        return entry if entry.suffix == ".py" else None
    if (entry / "__init__.py").exists():
        return entry
    inner = [p for p in sorted(entry.iterdir()) if not p.name.startswith((".", "_"))
             and ((p / "__init__.py").exists() or p.suffix == ".py")] if entry.is_dir() else []
    return inner[0] if len(inner) == 1 else None


def shard(subs: list[Submission], spec: str | None) -> list[Submission]:
    """The I-th of N deterministic shares (by position in the sorted list): every submission in one share."""
    if not spec:
        return subs
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise GradeError(f"--shard {spec!r}: expected I/N, e.g. 2/3") from None
    if not 1 <= i <= n:
        raise GradeError(f"--shard {spec!r}: I must be between 1 and N")
    return [s for k, s in enumerate(subs) if k % n == i - 1]


def _seed(out: Path, given: int | None) -> int:
    path = out / "seed"
    if given is not None:
        path.write_text(f"{given}\n")
        return given
    if path.exists():
        return int(path.read_text().strip())
    seed = secrets.randbelow(2**31)
    path.write_text(f"{seed}\n")
    return seed


def _unchanged(sub: Submission, out: Path) -> bool:
    """Complete results for the same sources: nothing to do."""
    path = out / "results" / f"{sub.name}.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    versions = [c.get("version") for c in doc.get("candidates", [])]
    return (doc.get("status") == "complete" and versions == [sub.digest()]
            and integrity.verify(doc, integrity.key()) == integrity.VALID)


# ----------------------------------------------------------------------------------------------- running
def command(sub: Submission, args: argparse.Namespace, out: Path, seed: int) -> list[str]:
    """One submission's pytest run: the installed suites, the untrusted-grading options."""
    from fmspec import cli

    components = [c for c in (args.components or "").split(",") if c]
    cmd = [sys.executable, "-m", "pytest", "--pyargs", *cli.suite_modules(components, bench=args.bench),
           "-p", "no:cacheprovider", *cli.quiet_benchmark(args.bench), "-q",
           "--candidate", f"{sub.name}={sub.path}",
           "--fmspec-results", str((out / "results" / f"{sub.name}.json").resolve()),
           "--fmspec-hidden-seed", str(seed), "--timeout", f"{args.timeout:g}",
           "--fmspec-memory-limit", f"{args.memory_limit:g}"]
    if args.bench:
        cmd.append("--fmspec-bench")
    if args.isolate:
        cmd.append("--fmspec-isolate")
    return cmd + list(args.pytest_args)


def _run_all(todo: list[Submission], args: argparse.Namespace, out: Path, seed: int) -> None:
    if not todo:
        return
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="submission", disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)
    with cf.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_one, s, args, out, seed): s for s in todo}
        for future in cf.as_completed(futures):
            sub = futures[future]
            future.result()
            bar.set_postfix_str(f"{sub.name}: {sub.status}", refresh=False)
            bar.update()
            if args.no_progress:
                print(f"fmspec grade: {sub.name}: {sub.status} ({sub.duration_s:.0f} s)", file=sys.stderr)
    bar.close()


def run_one(sub: Submission, args: argparse.Namespace, out: Path, seed: int) -> None:
    """Grade one submission in its own process group, killed whole when the budget runs out."""
    work = out / "work" / sub.name  # the run's working folder: whatever the candidate writes stays here
    work.mkdir(parents=True, exist_ok=True)
    log = out / "logs" / f"{sub.name}.txt"
    started = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.Popen(command(sub, args, out, seed), cwd=work, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=args.budget)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
    sub.duration_s = time.perf_counter() - started
    sub.status = _status(rc, out / "results" / f"{sub.name}.json", args.budget)


def _status(rc: int | None, results: Path, budget: float) -> str:
    if rc is None:
        return f"timed out (budget {budget:g} s)"
    try:
        doc = json.loads(results.read_text())
    except (OSError, ValueError):
        return f"crashed (pytest exit {rc}, no results)"
    if any(c.get("error") for c in doc.get("candidates", [])):
        return "import error"
    if doc.get("status") != "complete":
        return f"crashed (pytest exit {rc})"
    return "graded"


# ------------------------------------------------------------------------------------------- class files
def summarize(subs: list[Submission], out: Path, policy) -> list[dict]:
    """One roster row a submission: the gate's verdict on its results file."""
    from fmspec.reports import gate, schema, tables

    rows = []
    for sub in subs:
        path = out / "results" / f"{sub.name}.json"
        row = {"name": sub.name, "status": sub.status, "score": "", "max_score": "", "verdict": "no results",
               "passed": 0, "failed": 0, "missing": 0, "failed_components": "", "duration_s": round(sub.duration_s, 1),
               "path": str(sub.path)}
        if path.exists():
            try:
                results = tables.Results(tables.load_runs([path]))
                verdict = gate.evaluate(results, policy, candidate=sub.name)
            except (schema.ResultsError, gate.PolicyError) as exc:
                row["verdict"] = f"unreadable: {exc}"
            else:
                counts = _counts(json.loads(path.read_text()))
                row.update(score=round(verdict.score, 2), max_score=round(verdict.max_score, 2),
                           verdict="passed" if verdict.passed else "failed", **counts)
                if sub.status.startswith("pending") or sub.status.startswith("skipped"):
                    row["status"] = "graded" if sub.status == "pending" else sub.status
        rows.append(row)
    return rows


def _counts(doc: dict) -> dict:
    tests = doc.get("tests", [])
    bad = sorted({t["component"] for t in tests if t["outcome"] in ("failed", "error")})
    return {"passed": sum(t["outcome"] == "passed" for t in tests),
            "failed": sum(t["outcome"] in ("failed", "error") for t in tests),
            "missing": sum(t["outcome"] == "missing" for t in tests),
            "failed_components": " ".join(bad)}


def _write_class(rows: list[dict], subs: list[Submission], out: Path, policy) -> None:
    from fmspec.reports import export, html, tables

    with open(out / "class.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    files = [out / "results" / f"{s.name}.json" for s in subs if (out / "results" / f"{s.name}.json").exists()]
    for sub in subs:
        path = out / "results" / f"{sub.name}.json"
        if path.exists():
            results = tables.Results(tables.load_runs([path]))
            (out / "gradescope" / f"{sub.name}.json").write_text(
                export.render("gradescope", results, policy=policy, candidate=sub.name))
    if files:
        report = html.render(tables.Results(tables.load_runs(files)), title=f"class of {len(files)}")
        (out / "report.html").write_text(report, encoding="utf-8")
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  {'verdict':<8} {'score':>9}  {'pass':>4} {'fail':>4} {'miss':>4}  status / failed components")
    for r in rows:
        score = f"{r['score']}/{r['max_score']}" if r["max_score"] != "" else "-"
        print(f"{r['name']:<{width}}  {r['verdict']:<8} {score:>9}  {r['passed']:>4} {r['failed']:>4} {r['missing']:>4}  "
              f"{r['status']}{'; ' + r['failed_components'] if r['failed_components'] else ''}")
