"""Record the CPU-only results files of this folder: ``python tests/data/results/record_cpu.py [NAME...]``.

Each file is a plain run of the suites on this machine (no GPU), through the fmspec plugin, written where
the run writes it: nothing is edited afterwards. Re-record when the suites or the results schema change.

- ``course_cpu.json``: the reference on every component of the shipped course policy
  (``reports/policies/course.toml``), hypothesis profile ``ci``: flash's GPU tests skipped (no CUDA
  device), no benchmark: what a course's CPU autograder sees of a correct submission.
- ``missing_cpu.json``: the template (flash and posenc missing altogether) and torch_native (flash in
  part) on flash and posenc: missing features, tests unsupported in a dtype, GPU tests skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

try:
    import tomllib  # novermin: Python 3.11
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent.parent
COURSE = ROOT / "reports" / "policies" / "course.toml"


def course_suites() -> list[str]:
    components = tomllib.loads(COURSE.read_text(encoding="utf-8"))["components"]
    return [f"suites/test_{name}.py" for name in sorted(components)]


FILES = {
    "course_cpu.json": lambda: [*course_suites(), "--candidate", "reference"],
    "missing_cpu.json": lambda: ["suites/test_flash.py", "suites/test_posenc.py", "--candidate", "template",
                                 "--candidate", "torch_native"],
}


def record(name: str) -> None:
    out = HERE / name
    args = [sys.executable, "-m", "pytest", *FILES[name](), "--hypothesis-profile", "ci",
            "--fmspec-results", str(out.relative_to(ROOT)), "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or not out.exists():  # 1: tests failed or missing, still a results file
        sys.exit(f"{name}: pytest exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KiB): {proc.stdout.strip().splitlines()[-1]}")


def main(names: list[str]) -> None:
    for name in names or list(FILES):
        if name not in FILES:
            sys.exit(f"unknown file {name!r} (known: {', '.join(FILES)})")
        record(name)


if __name__ == "__main__":
    main(sys.argv[1:])
