#!/usr/bin/env bash
# Isolated mode on a CUDA machine, in one command: the suites whose tests take CUDA tensors, on the reference
# and torch_native, in process and with --fmspec-isolate (CUDA tensors cross through host memory); then the
# outcome of every test compared between the two runs (benchmarks/compare_outcomes.py).
# Usage: benchmarks/run_gpu_isolated.sh OUT_DIR [SUITE ...]   (default suites: flash layers vit lora posenc)
# fmspec installed (the suites run by --pyargs from OUT_DIR, candidates by entry point). FMSPEC_ISOLATE_CUDA=1
# lets the GPU tests run isolated (the plugin skips them otherwise). First run, H100: CUDA does not initialise
# in the sandboxed candidate process (cudaGetDeviceCount error 304): benchmarks/results/isolated-gpu-h100.txt.
export FMSPEC_ISOLATE_CUDA=1
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-benchmarks/out}}"
shift || true
SUITES=("${@:-flash layers vit lora posenc}")
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
OUT="$(cd "$OUT" && pwd)"
HERE="$(pwd)"
cd "$OUT"
PATHS=()
for s in ${SUITES[*]}; do PATHS+=("fmspec.suites.test_$s"); done
COMMON=(--pyargs -q -p no:cacheprovider -m "not bench" --hypothesis-profile ci
        --candidate reference --candidate torch_native)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
for mode in in-process isolated; do
    extra=()
    [ "$mode" = isolated ] && extra=(--fmspec-isolate)
    start=$(date +%s)
    timeout "${STEP_TIMEOUT:-270}" "$PY" -m pytest "${PATHS[@]}" "${COMMON[@]}" "${extra[@]}" --fmspec-results "$OUT/$mode.json" \
        2>&1 | tail -n 40 > "$OUT/$mode.log"
    echo "$mode: $(( $(date +%s) - start )) s" | tee -a "$OUT/times.txt"
    tail -n 3 "$OUT/$mode.log"
done
"$PY" - "$OUT" <<'PYEOF' | tee "$OUT/compare.txt"
import json, sys, collections
out = sys.argv[1]
docs = {m: json.load(open(f"{out}/{m}.json")) for m in ("in-process", "isolated")}
res = {m: {(t["candidate"], t["nodeid"]): (t["outcome"], (t.get("message") or "").splitlines()[:1]) for t in d["tests"]}
       for m, d in docs.items()}
a, b = res["in-process"], res["isolated"]
for m, r in res.items():
    print(m, dict(collections.Counter(v[0] for v in r.values())))
cuda = [k for k in a if "cuda" in k[1]]
print("tests on cuda:", len(cuda), "isolated outcomes:", dict(collections.Counter(b.get(k, ("absent",))[0] for k in cuda)))
diff = [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if (a.get(k) or ("",))[0] != (b.get(k) or ("",))[0]]
print("differ:", len(diff))
for k, x, y in diff[:60]:
    print(k, "\n   in-process:", x, "\n   isolated:  ", y)
PYEOF
