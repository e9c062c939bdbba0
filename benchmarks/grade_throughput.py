"""Throughput of ``fmspec grade``: submissions graded per minute on this machine, in-process and isolated.

    python benchmarks/grade_throughput.py OUT_DIR [--n 20] [--jobs N] [--modes in-process,isolated]
                                          [--md benchmarks/grade-throughput.md]

Generates N submissions in OUT_DIR/subs (half of them packages that re-export the whole reference, so they
run every suite to completion; the other half partial or buggy: a quarter with only some components, a
quarter with a planted bug in posenc and attention), and grades them with ``fmspec grade`` once per mode
(the default options: hidden seed, hypothesis's hidden profile, per-test timeout, memory limit):

- ``in-process``: every suite (``--components all``), each submission in a pytest process of its own, the
  candidate inside it (``--in-process``);
- ``isolated``: every suite, the candidate in a sandboxed process of its own (``fmspec grade``'s default).

Each mode's grading goes to OUT_DIR/<mode>/. Written: OUT_DIR/throughput.json and the generated part of the
Markdown file (between its ``<!-- grade_throughput -->`` markers; the text around them is kept): submissions
a minute (wall clock), CPU seconds a submission (every process the grading started, so a number that holds
on a busy machine too), the mean wall time of each kind of submission, every kind's verdicts (a buggy or
partial submission that passes the course policy fails the benchmark: a fast grader that passes a wrong
submission is no grader), and where one complete submission's test time goes, by component. Run it on an
otherwise idle machine for the wall-clock numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

FULL = "from fmspec.candidates.reference import *  # noqa: F401,F403\nfrom fmspec.candidates import reference as _r\n" \
       "import sys\n_m = sys.modules[__name__]\nfor _c in _r.COMPONENTS:\n    try:\n        setattr(_m, _c, getattr(_r, _c))\n" \
       "    except AttributeError:\n        pass\nCAPABILITIES = _r.CAPABILITIES\n"
PARTIAL = "from fmspec.reference import posenc, lora, quant, vit  # noqa: F401\n"
BUGGY = FULL + """
import types
import fmspec.reference.posenc as _pe
import fmspec.reference.attention as _at
posenc = types.SimpleNamespace(sinusoidal=lambda n, d, base=10000.0: _pe.sinusoidal(n, d, base) * 1.001)
attention = types.SimpleNamespace(**{k: getattr(_at, k) for k in dir(_at) if not k.startswith("_")})
attention.scaled_dot_product = lambda q, k, v, mask=None, scale=None: _at.scaled_dot_product(q, k, v, mask, scale) + 1e-3
"""
KINDS = {"full": FULL, "partial": PARTIAL, "buggy": BUGGY}
MODES = {"in-process": ["--in-process", "--components", "all"], "isolated": ["--components", "all"]}
BEGIN, END = "<!-- grade_throughput -->", "<!-- /grade_throughput -->"
SEED = 20240611  # a fixed hidden seed: every mode and every rerun grades on the same examples


def kind_of(name: str) -> str:
    return name.rsplit("-", 1)[1]


def generate(root: Path, n: int) -> None:
    for i in range(n):
        kind = "full" if i % 2 == 0 else ("partial" if i % 4 == 1 else "buggy")
        pkg = root / f"student{i:02d}-{kind}" / "mine"
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text(KINDS[kind])


def children_cpu() -> float:
    """CPU seconds (user and system) of every finished process this one started, and theirs."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_mode(mode: str, subs: Path, out: Path, n: int, jobs: int) -> dict:
    """Grade the class once in ``mode`` (a fresh output folder, so nothing is skipped as unchanged)."""
    target = out / mode
    if target.exists():
        import shutil

        shutil.rmtree(target)
    cmd = [sys.executable, "-m", "fmspec", "grade", str(subs), "--out", str(target), "--jobs", str(jobs),
           "--seed", str(SEED), "--no-progress", *MODES[mode]]
    cpu0, started = children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - started, children_cpu() - cpu0
    with open(target / "class.csv") as fh:
        rows = list(csv.DictReader(fh))
    kinds: dict[str, dict] = defaultdict(lambda: {"n": 0, "wall_s": 0.0, "verdicts": defaultdict(int)})
    for row in rows:
        k = kinds[kind_of(row["name"])]
        k["n"] += 1
        k["wall_s"] += float(row["duration_s"] or 0)
        k["verdicts"][row["verdict"]] += 1
    by_kind = {name: {"n": k["n"], "mean_wall_s": round(k["wall_s"] / k["n"], 1), "verdicts": dict(k["verdicts"])}
               for name, k in sorted(kinds.items())}
    wrong = [r["name"] for r in rows if kind_of(r["name"]) != "full" and r["verdict"] == "passed"]
    # a complete copy of the reference fails no test and is graded to the end (with --components the policy
    # may still fail it for the components left out)
    unfinished = [r["name"] for r in rows if kind_of(r["name"]) == "full" and (r["failed"] != "0" or r["status"] != "graded")]
    return {"mode": mode, "args": " ".join(MODES[mode]), "submissions": n, "jobs": jobs, "wall_s": round(wall, 1),
            "per_minute": round(n / wall * 60, 2), "cpu_s_per_submission": round(cpu / n, 1),
            "cpu_bound_per_minute": round((os.cpu_count() or 1) * 60 * n / cpu, 2), "by_kind": by_kind,
            "wrong_passed": wrong, "correct_failed": unfinished, "returncode": proc.returncode,
            "stderr_tail": proc.stderr[-2000:] if proc.returncode else ""}


def breakdown(results: Path) -> list[tuple[str, int, float]]:
    """(component, tests, seconds in tests) of one results file, most expensive first."""
    doc = json.loads(results.read_text())
    acc: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for t in doc["tests"]:
        acc[t["component"]][0] += 1
        acc[t["component"]][1] += t.get("duration") or 0.0
    return sorted(((c, n, s) for c, (n, s) in acc.items()), key=lambda x: -x[2])


def markdown(result: dict, parts: list[tuple[str, int, float]]) -> str:
    env = result["environment"]
    lines = [BEGIN, "", f"Generated by `python benchmarks/grade_throughput.py` ({result['date']}): {env['machine']}, "
             f"{env['cpu_count']} cores, load average {env['load_before'][0]:.1f} before and "
             f"{env['load_after'][0]:.1f} after. {result['n']} generated submissions (half complete copies of the "
             f"reference, a quarter partial, a quarter with planted bugs), `--jobs {result['jobs']}`, hypothesis's "
             f"hidden profile ({result['hidden_examples']} examples a property).", "",
             "| mode | components | wall | submissions / min | CPU s / submission | CPU-bound / min | "
             "mean wall s (full, partial, buggy) | wrong submissions passed |",
             "|---|---|---:|---:|---:|---:|---|---|"]
    for m in result["modes"]:
        walls = ", ".join(str(m["by_kind"].get(k, {}).get("mean_wall_s", "-")) for k in KINDS)
        comps = m["args"].split("--components", 1)[1].split()[0] if "--components" in m["args"] else "the policy's"
        lines.append(f"| {m['mode']} | {comps} | {m['wall_s']:.0f} s | {m['per_minute']} | {m['cpu_s_per_submission']} | "
                     f"{m['cpu_bound_per_minute']} | {walls} | {len(m['wrong_passed']) or 'none'} |")
    lines += ["", "CPU-bound / min: the cores' CPU seconds a minute over the CPU seconds a submission took, i.e. "
              "the rate an idle machine of this many cores would reach.", ""]
    if parts:
        total = sum(s for _, _, s in parts)
        lines += [f"One complete submission (in-process, every suite): {total:.1f} s of wall clock in tests (the "
                  "durations in its results file; attention includes attention_fast), by component:", "",
                  "| component | tests | wall s | share |", "|---|---:|---:|---:|"]
        lines += [f"| {c} | {n} | {s:.1f} | {s / total:.0%} |" for c, n, s in parts]
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


def write_markdown(path: Path, text: str) -> None:
    """Replace the generated part of ``path`` (between the markers), keeping the rest."""
    old = path.read_text() if path.exists() else ""
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + text + rest.split(END, 1)[1]
    else:
        new = (old.rstrip() + "\n\n" if old else "# Grading throughput\n\n") + text + "\n"
    path.write_text(new)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    p.add_argument("--md", type=Path, default=Path(__file__).resolve().parent / "grade-throughput.md",
                   help="the Markdown file whose generated part is rewritten ('none': no file)")
    args = p.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        p.error(f"--modes: unknown {unknown} (known: {', '.join(MODES)})")
    from fmspec import profiles

    subs = args.out / "subs"
    generate(subs, args.n)
    load_before = os.getloadavg()
    results = []
    for mode in modes:
        results.append(run_mode(mode, subs, args.out, args.n, args.jobs))
        print(json.dumps(results[-1], indent=2), flush=True)
    result = {"date": time.strftime("%Y-%m-%d"), "n": args.n, "jobs": args.jobs,
              "hidden_examples": profiles.HIDDEN_EXAMPLES, "modes": results,
              "environment": {"machine": platform.platform(), "cpu_count": os.cpu_count(),
                              "load_before": load_before, "load_after": os.getloadavg()}}
    (args.out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    first_full = sorted((args.out / modes[0] / "results").glob("*-full.json")) if modes else []
    parts = breakdown(first_full[0]) if first_full and modes[0] == "in-process" else []
    if str(args.md) != "none":
        write_markdown(args.md, markdown(result, parts))
    bad = any(m["wrong_passed"] or m["correct_failed"] or m["returncode"] for m in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
