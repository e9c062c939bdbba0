"""Which tests each mutant failed, from fmspec results files, as a Markdown table.

    python benchmarks/mutants_table.py GPU_RESULTS.json [CPU_RESULTS.json]

With a second file (the same mutants and suites run on a machine without a GPU), the last column lists
the tests that failed only in the first: the GPU-only tests that catch the mutant.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def failures(path: str) -> tuple[list[str], dict[str, set[str]]]:
    """The candidates of a results file, in order, and the tests (properties) each failed or errored."""
    doc = json.loads(open(path, encoding="utf-8").read())
    failed: dict[str, set[str]] = defaultdict(set)
    for t in doc["tests"]:
        if t["outcome"] in ("failed", "error"):
            failed[t["candidate"]].add(t["property"])
    return [c["name"] for c in doc["candidates"]], failed


def main(gpu_path: str, cpu_path: str | None = None) -> None:
    names, gpu = failures(gpu_path)
    cpu = failures(cpu_path)[1] if cpu_path else None
    print("| mutant | tests failed | failed only with a GPU |" if cpu is not None else "| mutant | tests failed |")
    print("| --- | --- | --- |" if cpu is not None else "| --- | --- |")
    for name in names:
        tests = sorted(gpu[name])
        row = f"| `{name}` | {len(tests)}: {', '.join(tests) or 'none'} |"
        if cpu is not None:
            row += f" {', '.join(sorted(gpu[name] - cpu[name])) or '-'} |"
        print(row)


if __name__ == "__main__":
    main(*sys.argv[1:3])
