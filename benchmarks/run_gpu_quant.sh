#!/usr/bin/env bash
# Everything the GPU machine does for quant, in one command (any CUDA GPU with Triton):
#   suite        the quant suite (CPU and CUDA tests) for the reference, then conformance + the benchmarks
#                (suites/bench_quant.py) for it: results JSON + markdown table (about 6 minutes);
#   nf4-variants the NF4 dequantize kernel variants of reference/quant_triton.py at 16M, 64M and 256M elements
#                beside the measured copy bandwidth, each checked bit for bit against the readable reference
#                (benchmarks/quant_gpu.py --nf4-variants; about a minute);
#   all          both (the default).
# (The kernel mutants are not in the wheel: tests/test_mutants.py runs them on CPU under the interpreter.)
# Usage: benchmarks/run_gpu_quant.sh OUT_DIR [all|suite|nf4-variants]
# Runs the installed fmspec package (--pyargs, candidates by entry-point name), from any directory.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT="${1:-${OUT:-quant-out}}"
MODE="${2:-all}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
COMMON=(-q -p no:cacheprovider -o addopts="" --strict-markers --hypothesis-profile ci --rootdir "$OUT")
if [[ "$MODE" == all || "$MODE" == suite ]]; then
    timeout 300 "$PY" -m pytest --pyargs fmspec.suites.test_quant fmspec.suites.bench_quant --fmspec-bench \
        --candidate reference -k "not interpreter" "${COMMON[@]}" --fmspec-results "$OUT/quant-bench-gpu.json" 2>&1 \
        | tail -n 15 | tee "$OUT/bench.log"
    "$PY" "$HERE/quant_gpu.py" "$OUT/quant-bench-gpu.json" | tee "$OUT/quant-bench-gpu.md"
fi
if [[ "$MODE" == all || "$MODE" == nf4-variants ]]; then
    timeout 230 "$PY" "$HERE/quant_gpu.py" --nf4-variants "$OUT" 2>&1 | tee "$OUT/nf4-variants.log"
fi
