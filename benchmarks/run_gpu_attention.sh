#!/usr/bin/env bash
# attention on a CUDA machine, in one command, from the installed fmspec wheel (run from any directory):
#   1. conformance: the attention suites (suites/test_attention.py, suites/test_attention_fast.py, whose
#      CUDA tests check sparse's FlexAttention path) for the reference and torch_native candidates, then,
#      in the same process (benchmarks time only what passed there), the GPU benchmark grid of
#      suites/bench_attention.py (test_gpu_*: every sparse family and linear attention against SDPA flash
#      and FlexAttention, T = 1k..16k); the CPU benchmarks are left out (-m "not bench or gpu");
#   2. the markdown table of the GPU grid (fmspec.suites.bench_attention's gpu_table).
# Usage: benchmarks/run_gpu_attention.sh OUT_DIR     (python: $PYTHON, default python3, with fmspec installed)
# Writes OUT_DIR/attention-gpu.json (the fmspec results), attention-gpu.log, attention-gpu.md.
set -uo pipefail
OUT="$(mkdir -p "${1:-${OUT:-attention-gpu-out}}" && cd "${1:-${OUT:-attention-gpu-out}}" && pwd)"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
WORK="$(mktemp -d)"  # outside any checkout: the suites come from the installed package
cd "$WORK" || exit 1
"$PY" -c "import fmspec, torch; assert torch.cuda.is_available(), 'no CUDA device'; print('fmspec', fmspec.__file__, '| torch', torch.__version__, '|', torch.cuda.get_device_name())" \
    2>&1 | tee "$OUT/attention-gpu.log" || exit 1
timeout 330 "$PY" -m pytest --pyargs fmspec.suites.test_attention fmspec.suites.test_attention_fast fmspec.suites.bench_attention \
    --candidate reference --candidate torch_native --fmspec-bench -m "not bench or gpu" --hypothesis-profile ci \
    -q -p no:cacheprovider --strict-markers --fmspec-results "$OUT/attention-gpu.json" 2>&1 | tail -n 40 | tee -a "$OUT/attention-gpu.log"
timeout 60 "$PY" -m fmspec.suites.bench_attention "$OUT/attention-gpu.json" | tee "$OUT/attention-gpu.md"
rm -rf "$WORK"
