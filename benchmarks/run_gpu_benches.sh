#!/usr/bin/env bash
# GPU benchmarks of lora, checkpoint, vit and layers for the reference candidate, in one command: per
# component, its conformance suite and then its benchmarks (bench_<component>.py times only what passed
# conformance in the same process), on CUDA; one results JSON per component, then one markdown table of all.
# It runs the installed fmspec (pytest --pyargs fmspec.suites.*, the candidate by its entry-point name), so
# it works from any directory, with or without a checkout. What each bench measures: gpu-benches-README.md.
#
# Usage: run_gpu_benches.sh OUT_DIR      (PYTHON=/path/to/python to choose the interpreter)
#   OUT_DIR/<component>-bench.json   the fmspec results (tests, benchmark records with every number)
#   OUT_DIR/<component>.log          the end of pytest's output
#   OUT_DIR/gpu-benches.md           the tables
# Every step runs under `timeout`; all of them together stay under 5 minutes (about 2 to 3 on an H100).
set -uo pipefail
OUT="${1:?usage: run_gpu_benches.sh OUT_DIR}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
cd "$OUT" || exit 1  # nothing lands in the caller's directory or a checkout
"$PY" -c 'import fmspec.suites, torch; assert torch.cuda.is_available(), "no CUDA device"' || exit 1
COMMON=(-q -p no:cacheprovider -o addopts="" --strict-markers --fmspec-bench --candidate reference -rs)
declare -A LIMIT=([lora]=75 [checkpoint]=75 [vit]=60 [layers]=60)  # seconds; 270 in all
for c in lora checkpoint vit layers; do
    echo "== $c (at most ${LIMIT[$c]} s)"
    timeout "${LIMIT[$c]}" "$PY" -m pytest --pyargs "fmspec.suites.test_$c" "fmspec.suites.bench_$c" "${COMMON[@]}" \
        --fmspec-results "$OUT/$c-bench.json" > "$OUT/$c.log" 2>&1
    rc=$?
    [ "$rc" = 124 ] && echo "timed out after ${LIMIT[$c]} s: $c's results are lost" | tee -a "$OUT/$c.log"
    tail -n 8 "$OUT/$c.log"
done

# One table per benchmark test: the candidate's time, rates and ceiling fractions, each peer's time and the
# speedup against it, and the memory columns where the bench records them.
timeout 30 "$PY" - "$OUT"/*-bench.json > "$OUT/gpu-benches.md" <<'PYTHON'
import json
import sys

SHAPE = {"lora": ["mode", "d", "r", "tokens"], "checkpoint": ["method", "depth"],
         "vit": ["kind", "mode", "image", "batch"], "layers": ["layer"]}
MEMORY = ["held_bytes", "peak_bytes"]
PEERS_MAYBE = ["peft", "timm"]  # a peer that is measured only where its library imports: the reason if not


def num(v, digits=3):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e4 else f"{v:.0f}"
    return str(v)


def mib(v):
    return "n/a" if v is None else f"{v / 2**20:.0f}"


def table(rows):
    first = rows[0]["metrics"]
    shape = SHAPE.get(rows[0]["component"], [])
    peers = [k.removeprefix("speedup_vs_") for k in first if k.startswith("speedup_vs_")]
    memory = [k for k in MEMORY if k in first]
    per_row_cost = len({t["metrics"].get("cost_model") for t in rows}) > 1
    head = (["candidate", *shape, "ms (p20-p80)", "TFLOP/s", "GB/s", "of roofline", "bound"]
            + [f"{p} ms" for p in peers] + [f"x {p}" for p in peers] + [f"{k} MiB" for k in memory]
            + [f"{p} peak MiB" for p in peers if f"{p}_peak_bytes" in first] + (["cost model"] if per_row_cost else []))
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for t in rows:
        m = t["metrics"]
        cells = ([t["candidate"], *(num(m.get(k)) for k in shape),
                  f"{m['median_ms']:.4g} ({m['p20_ms']:.4g}-{m['p80_ms']:.4g})", num(m["tflops"]), num(m["gbps"]),
                  num(m["fraction_of_roofline"], 2), m["bound"]]
                 + [num(m.get(f"{p}_ms"), 4) for p in peers] + [num(m.get(f"speedup_vs_{p}"), 3) for p in peers]
                 + [mib(m.get(k)) for k in memory]
                 + [mib(m.get(f"{p}_peak_bytes")) for p in peers if f"{p}_peak_bytes" in first]
                 + ([m.get("cost_model", "")] if per_row_cost else []))
        lines.append("| " + " | ".join(cells) + " |")
    missing = sorted({f"{k}: {m[k]}" for t in rows for m in [t["metrics"]] for k in PEERS_MAYBE
                      if k in m and m[k] != "measured"})
    return lines + ([""] + [f"Not measured, {x}" for x in missing] if missing else [])


out = []
for path in sys.argv[1:]:
    try:
        doc = json.load(open(path))
    except (OSError, ValueError) as exc:
        out += [f"## {path}", "", f"unreadable: {exc}", ""]
        continue
    env = doc.get("environment", {})
    tests = doc.get("tests", [])
    timed = [t for t in tests if (t.get("metrics") or {}).get("median_ms") is not None]
    not_timed = [t for t in tests if "_speed" in t.get("property", "") and t not in timed]
    out += [f"## {path.rsplit('/', 1)[-1]}", "",
            f"Device: {env.get('device')}; torch {env.get('torch')}, triton {env.get('triton')}. "
            "Device-timed medians; rates by each bench's cost model (its module docstring); "
            "x peer = the peer's time over the candidate's (above 1: the candidate is faster).", ""]
    groups = {}
    for t in timed:
        groups.setdefault(t["property"], []).append(t)
    for prop, rows in groups.items():
        rows.sort(key=lambda t: [(0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))
                                 for v in [t["candidate"], *(t["metrics"].get(k) for k in SHAPE.get(t["component"], []))]])
        costs = {t["metrics"].get("cost_model") for t in rows}
        out += [f"### {prop}", ""] + ([f"Cost model: {costs.pop()}.", ""] if len(costs) == 1 else []) + [*table(rows), ""]
    if not_timed:
        out += ["Not timed:", ""] + [f"- {t['nodeid']}: {t.get('outcome')} {t.get('message') or ''}".rstrip()
                                     for t in not_timed] + [""]
    failed = [t for t in tests if t.get("outcome") in ("failed", "error")]
    if failed:
        out += [f"Failed: {len(failed)} tests, e.g. {failed[0]['nodeid']}", ""]
print("\n".join(out))
PYTHON
echo "tables: $OUT/gpu-benches.md"
