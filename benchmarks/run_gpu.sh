#!/usr/bin/env bash
# Everything the GPU machine does for flash, in one command (an H200 or any CUDA GPU with Triton):
#   1. the flash suite on CUDA for the reference and torch_native candidates (conformance);
#   2. conformance + the benchmark grid for the reference (suites/bench_flash.py), results JSON + table;
#   3. benchmarks/flash_gpu.py --check: the Triton kernels' own checks (TMA and plain loads, D 32..256).
# Usage: benchmarks/run_gpu.sh OUT_DIR   (candidates by path: works whether or not fmspec is pip-installed)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-benchmarks/out}}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
COMMON=(-q -p no:cacheprovider -o addopts="" --strict-markers)
timeout 220 "$PY" -m pytest suites/test_flash.py --candidate ./candidates/reference --candidate ./candidates/torch_native "${COMMON[@]}" \
    --fmspec-results "$OUT/flash-suite-gpu.json" 2>&1 | tail -n 25 | tee "$OUT/suite.log"
timeout 330 "$PY" -m pytest suites/test_flash.py suites/bench_flash.py --fmspec-bench --candidate ./candidates/reference \
    -k "not interpreter" "${COMMON[@]}" --fmspec-results "$OUT/flash-bench-gpu.json" 2>&1 | tail -n 15 | tee "$OUT/bench.log"
"$PY" benchmarks/table.py "$OUT/flash-bench-gpu.json" | tee "$OUT/flash-bench-gpu.md"
