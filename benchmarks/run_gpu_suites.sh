#!/usr/bin/env bash
# Conformance on a CUDA machine, in one command (no benchmarks):
#   1. every suite for the reference and torch_native candidates, GPU tests included;
#   2. the flash and checkpoint suites on every flash and checkpoint mutant, whole (tests/test_mutants.py
#      runs only the tests each mutant lists), to see which tests catch each one on a GPU;
#   3. a table of which tests each mutant failed (benchmarks/mutants_table.py).
# Usage: benchmarks/run_gpu_suites.sh OUT_DIR   (candidates by path: works whether or not fmspec is installed)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-${OUT:-benchmarks/out}}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
COMMON=(-q -p no:cacheprovider -o addopts="" --strict-markers -m "not bench")
timeout 300 "$PY" -m pytest suites --candidate ./candidates/reference --candidate ./candidates/torch_native "${COMMON[@]}" \
    --fmspec-results "$OUT/suites-gpu.json" 2>&1 | tail -n 30 | tee "$OUT/suites.log"
MUTANTS=()
for m in candidates/mutants/flash_*.py candidates/mutants/checkpoint_*.py; do MUTANTS+=(--candidate "./$m"); done
timeout 240 "$PY" -m pytest suites/test_flash.py suites/test_checkpoint.py "${MUTANTS[@]}" "${COMMON[@]}" \
    --hypothesis-profile mutants --fmspec-results "$OUT/mutants-gpu.json" 2>&1 | tail -n 8 | tee "$OUT/mutants.log"
"$PY" benchmarks/mutants_table.py "$OUT/mutants-gpu.json" | tee "$OUT/mutants-gpu.md"
