#!/usr/bin/env bash
# collectives on every GPU of one machine (NCCL), in one command, from this checkout:
#   suite    suites/test_collectives.py for the reference and torch_native candidates, the pool on the
#            device-chosen backend: nccl with one GPU a rank where there is a GPU for each of its
#            FMSPEC_COLLECTIVES_WORLD ranks (default: min(4, GPUs); the tests needing more ranks skip);
#   mutants  every collectives mutant (candidates/mutants/collectives_*.py, by path) on the tests its
#            CAUGHT_BY lists, as tests/test_mutants.py runs them on the CPU (MUTANT_TESTS=all: the whole
#            suite); a table of which tests each failed and whether its CAUGHT_BY tests did;
#   bench    benchmarks/collectives_gpu.py --world <every GPU>: AllReduce busbw 1 KB .. 1 GB, DDP step time,
#            NVLink (--dry on a machine without CUDA).
# Usage: benchmarks/run_gpu_collectives.sh OUT_DIR [suite] [mutants] [bench]     (default: all three)
# Each step runs under `timeout` (SUITE_TIMEOUT, MUTANTS_TIMEOUT, BENCH_TIMEOUT seconds: 170, 190, 170;
# under 10 minutes in all).
# Everything lands in OUT_DIR (one folder to tar; 7 files: device.txt, run.log, suite.json, mutants.json,
# mutants.md, collectives_gpu.json, collectives_gpu.md). Python: $PYTHON (default python3) with torch, pytest and
# hypothesis. fmspec is imported from this checkout whatever is installed (a sitecustomize in a temporary
# folder on PYTHONPATH maps fmspec.* onto the checkout's folders, as the editable install does): the pool's
# workers and the benchmark's ranks get the same code, and the mutants (not in the wheel) import.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:?usage: benchmarks/run_gpu_collectives.sh OUT_DIR [suite] [mutants] [bench]}"
shift
STEPS="${*:-suite mutants bench}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

SHIM="$(mktemp -d)"
trap 'rm -rf "$SHIM"' EXIT
cat > "$SHIM/sitecustomize.py" <<'EOF'
# fmspec.* from the checkout named by FMSPEC_CHECKOUT (pyproject.toml's package-dir), before any installed copy
import importlib.util, os, sys
_ROOT = os.environ.get("FMSPEC_CHECKOUT")
_DIRS = {"fmspec": "fmspec", "fmspec.reference": "reference", "fmspec.suites": "suites",
         "fmspec.reports": "reports", "fmspec.candidates": "candidates"}


class _CheckoutFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if _ROOT and name in _DIRS:
            folder = os.path.join(_ROOT, _DIRS[name])
            return importlib.util.spec_from_file_location(name, os.path.join(folder, "__init__.py"),
                                                          submodule_search_locations=[folder])
        return None


sys.meta_path.insert(0, _CheckoutFinder)
EOF
export FMSPEC_CHECKOUT="$ROOT" PYTHONPATH="$SHIM${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT" || exit 1

LOG="$OUT/run.log"
{
    echo "checkout: $ROOT  steps: $STEPS  date: $(date -u +%FT%TZ)"
    nvidia-smi 2>&1 | head -n 30
    nvidia-smi topo -m 2>&1
    nvidia-smi nvlink -s 2>&1 | head -n 80
} > "$OUT/device.txt"
NGPU="$("$PY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)')" || exit 1
"$PY" -c "import fmspec.suites._collectives_helpers as ch, fmspec.candidates.mutants, torch, pytest, hypothesis
print('fmspec from', ch.__file__, '| torch', torch.__version__, '| pytest', pytest.__version__, '| hypothesis', hypothesis.__version__)" \
    2>&1 | tee "$LOG" || exit 1
if [[ -z "${FMSPEC_COLLECTIVES_WORLD:-}" ]]; then
    export FMSPEC_COLLECTIVES_WORLD=$(( NGPU >= 4 ? 4 : (NGPU >= 1 ? NGPU : 4) ))
fi
BACKEND="$("$PY" -c 'from fmspec.suites import _collectives_helpers as ch; print(ch.pool_backend(ch.pool_size()))')"
echo "GPUs: $NGPU  pool: $FMSPEC_COLLECTIVES_WORLD ranks on $BACKEND" | tee -a "$LOG"
COMMON=(-q -p no:cacheprovider -o addopts="" --strict-markers -rs --rootdir "$ROOT")

if [[ " $STEPS " == *" suite "* ]]; then
    echo "== suite (reference, torch_native)" | tee -a "$LOG"
    timeout -k 10 "${SUITE_TIMEOUT:-170}" "$PY" -m pytest suites/test_collectives.py --candidate ./candidates/reference \
        --candidate ./candidates/torch_native "${COMMON[@]}" --fmspec-results "$OUT/suite.json" 2>&1 \
        | tail -n 40 | tee -a "$LOG"
fi

if [[ " $STEPS " == *" mutants "* ]]; then
    echo "== mutants (${MUTANT_TESTS:-caught_by})" | tee -a "$LOG"
    mapfile -t MUTANT_ARGS < <("$PY" - "${MUTANT_TESTS:-caught_by}" <<'EOF'
import sys
import torch
from fmspec.candidates import mutants

cuda = torch.cuda.is_available()
found = [m for m in mutants.discover() if m.component == "collectives"]
for m in found:
    print("--candidate")
    print(str(m.path))
if sys.argv[1] != "all":  # each mutant on the tests it lists, as tests/test_mutants.py runs them
    print("-k")
    print(" or ".join(sorted({f"({t} and {m.name})" for m in found for t in m.expected(cuda)})))
EOF
    )
    timeout -k 10 "${MUTANTS_TIMEOUT:-190}" "$PY" -m pytest suites/test_collectives.py "${MUTANT_ARGS[@]}" "${COMMON[@]}" \
        --hypothesis-profile mutants --fmspec-results "$OUT/mutants.json" 2>&1 | tail -n 3 | tee -a "$LOG"
    "$PY" - "$OUT/mutants.json" <<'EOF' 2>&1 | tee "$OUT/mutants.md" | tee -a "$LOG"
import json, sys
from collections import defaultdict
import torch
from fmspec.candidates import mutants

try:
    doc = json.load(open(sys.argv[1]))
except OSError:
    sys.exit("no mutants results (the step timed out before writing them?)")
outcomes = defaultdict(dict)
for t in doc["tests"]:
    outcomes[t["candidate"]].setdefault(t["property"], set()).add(t["outcome"])
print("| mutant | CAUGHT_BY | failed | caught by its CAUGHT_BY |\n| --- | --- | --- | --- |")
for m in sorted((m for m in mutants.discover() if m.component == "collectives"), key=lambda m: m.name):
    seen = outcomes.get(m.name, {})
    failed = sorted(p for p, o in seen.items() if o & {"failed", "error"})
    listed = m.expected(torch.cuda.is_available())
    if not seen:
        verdict = "not run"
    elif all(t in failed for t in listed):
        verdict = "yes"
    elif all(seen.get(t, set()) <= {"skipped"} for t in listed if t not in failed):
        verdict = "skipped (the pool is too small)" if not failed else "partly (the rest skipped)"
    else:
        verdict = "NO: " + ", ".join(t for t in listed if t not in failed)
    print(f"| `{m.name}` | {', '.join(listed)} | {', '.join(failed) or 'none'} | {verdict} |")
EOF
fi

if [[ " $STEPS " == *" bench "* ]]; then
    echo "== bench" | tee -a "$LOG"
    if [[ "$NGPU" -ge 1 ]]; then BENCH=(--world "${BENCH_WORLD:-$NGPU}"); else BENCH=(--dry); fi
    timeout -k 10 "${BENCH_TIMEOUT:-170}" "$PY" benchmarks/collectives_gpu.py --out "$OUT" "${BENCH[@]}" 2>&1 \
        | tail -n 60 | tee -a "$LOG"
fi
echo "== done: $(ls "$OUT" | tr '\n' ' ')" | tee -a "$LOG"
