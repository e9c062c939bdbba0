#!/usr/bin/env bash
# The flash forward's profile on one CUDA GPU, in one command (installs nothing; run from any directory):
# benchmarks/flash_profile_gpu.py --out OUT_DIR: the autotuned winners' configs, registers, spills, shared
# memory and programs per SM; the forward ablation (softmax / P·V / Q·Kᵀ switched off); the two-programs-per-SM
# and stage-count candidates against the winner; SDPA flash and cuDNN on the same grid (about 4-6 minutes).
# Usage: benchmarks/run_gpu_flash_profile.sh OUT_DIR     (python: $PYTHON, default python3, with fmspec installed)
# Writes OUT_DIR/flash_profile.json, flash_profile.md, flash_profile.log.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$(mkdir -p "${1:-flash-profile-out}" && cd "${1:-flash-profile-out}" && pwd)"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
"$PY" -c "import fmspec, torch, triton; assert torch.cuda.is_available(), 'no CUDA device'; print('fmspec', fmspec.__file__, '| torch', torch.__version__, '| triton', triton.__version__, '|', torch.cuda.get_device_name())" \
    2>&1 | tee "$OUT/flash_profile.log" || exit 1
# the script stops starting new points after --budget-s and saves after every point; timeout is the backstop
timeout 460 "$PY" "$HERE/flash_profile_gpu.py" --out "$OUT" --budget-s 400 2>&1 | tee -a "$OUT/flash_profile.log"
