#!/usr/bin/env bash
# Everything the GPU machine does for quant, in one command (any CUDA GPU with Triton; about 6 minutes):
#   1. the quant suite (CPU and CUDA tests) for the reference and torch_native candidates;
#   2. the Triton kernels' checks on CUDA, interpreter-free (exact ties and large-vs-pieces, where the
#      reference takes its kernels), for the reference and the two kernel mutants (which must fail them);
#   3. conformance + the benchmarks (suites/bench_quant.py) for the reference: results JSON + markdown table.
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
MUTANTS="$("$PY" -c 'import fmspec.candidates.mutants as m; print(m.HERE)')"
timeout 150 "$PY" -m pytest --pyargs fmspec.suites.test_quant --candidate reference --candidate torch_native \
    -m "not bench" "${COMMON[@]}" --fmspec-results "$OUT/quant-suite-gpu.json" 2>&1 | tail -n 20 | tee "$OUT/suite.log"
timeout 60 "$PY" -m pytest --pyargs fmspec.suites.test_quant --candidate reference \
    --candidate "$MUTANTS/quant_triton_round_half_up.py" --candidate "$MUTANTS/quant_triton_partial_block_dropped.py" \
    -k "cuda and (exact_ties or pieces)" "${COMMON[@]}" --fmspec-results "$OUT/quant-kernels-gpu.json" 2>&1 \
    | tail -n 12 | tee "$OUT/kernels.log"
timeout 300 "$PY" -m pytest --pyargs fmspec.suites.test_quant fmspec.suites.bench_quant --fmspec-bench \
    --candidate reference -k "not interpreter" "${COMMON[@]}" --fmspec-results "$OUT/quant-bench-gpu.json" 2>&1 \
    | tail -n 15 | tee "$OUT/bench.log"
"$PY" "$HERE/quant_gpu.py" "$OUT/quant-bench-gpu.json" | tee "$OUT/quant-bench-gpu.md"
