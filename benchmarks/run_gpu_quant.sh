#!/usr/bin/env bash
# Everything the GPU machine does for quant, in one command (any CUDA GPU with Triton; about 6 minutes):
#   1. the quant suite (CPU and CUDA tests) for the reference and torch_native candidates;
#   2. conformance + the benchmarks (suites/bench_quant.py) for the reference: results JSON + markdown table.
# (The kernel mutants are not in the wheel: tests/test_mutants.py runs them on CPU under the interpreter.)
# Usage: benchmarks/run_gpu_quant.sh OUT_DIR
# Runs the installed fmspec package (--pyargs, candidates by entry-point name), from any directory.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-${OUT:-quant-out}}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
COMMON=(-q -p no:cacheprovider -o addopts="" --strict-markers --hypothesis-profile ci --rootdir "$OUT")
timeout 300 "$PY" -m pytest --pyargs fmspec.suites.test_quant fmspec.suites.bench_quant --fmspec-bench \
    --candidate reference -k "not interpreter" "${COMMON[@]}" --fmspec-results "$OUT/quant-bench-gpu.json" 2>&1 \
    | tail -n 15 | tee "$OUT/bench.log"
"$PY" "$HERE/quant_gpu.py" "$OUT/quant-bench-gpu.json" | tee "$OUT/quant-bench-gpu.md"
