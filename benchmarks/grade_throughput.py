"""Throughput of ``fmspec grade``: submissions graded per minute on this machine.

    python benchmarks/grade_throughput.py OUT_DIR [--n 20] [--jobs N]

Generates N submissions in OUT_DIR/subs (half of them packages that re-export the whole reference, so they
run every suite to completion; the other half partial or buggy: a quarter with only some components, a
quarter with a planted bug in posenc and attention), grades them with ``fmspec grade`` (every suite, the
default options: hidden seed, per-test timeout, memory limit), and writes OUT_DIR/throughput.json with the
wall time and submissions per minute. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
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


def generate(root: Path, n: int) -> None:
    for i in range(n):
        kind = "full" if i % 2 == 0 else ("partial" if i % 4 == 1 else "buggy")
        pkg = root / f"student{i:02d}-{kind}" / "mine"
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / "__init__.py").write_text({"full": FULL, "partial": PARTIAL, "buggy": BUGGY}[kind])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = p.parse_args()
    subs = args.out / "subs"
    generate(subs, args.n)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fmspec", "grade", str(subs), "--out", str(args.out / "grading"),
                           "--jobs", str(args.jobs), "--no-progress"], capture_output=True, text=True)
    wall = time.perf_counter() - started
    result = {"submissions": args.n, "jobs": args.jobs, "wall_s": round(wall, 1),
              "per_minute": round(args.n / wall * 60, 2), "returncode": proc.returncode,
              "cpu_count": os.cpu_count(), "machine": platform.platform(),
              "load_average_after": os.getloadavg()}
    (args.out / "throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    print(proc.stdout)
    print(json.dumps(result, indent=2))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
