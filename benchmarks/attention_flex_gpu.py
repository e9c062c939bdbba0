"""The reference's sparse attention on the GPU against FlexAttention with the same mask, in one process.

    python benchmarks/attention_flex_gpu.py OUT_DIR

bf16, H = 16, D = 64, B·T = 16k tokens (B = 16384 / T, at most 4), forward only, T in {4k, 16k}: for each
sparse family of suites/bench_attention.py, the reference's ``attention.sparse`` (block mask from
``reference/attention/flex.py``, compiled FlexAttention), the same with the compiler settings patched around
every call (how the reference called it before), FlexAttention with torch's own ``create_block_mask`` of the
same mask_mod through one compiled call, and SDPA's flash backend (dense, causal where the family is).
Device-timed medians (fmspec/gpu_bench.py). Writes OUT_DIR/attention_flex_gpu.json and prints a table.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from fmspec import gpu_bench as gb
from fmspec.reference import attention as ref
from fmspec.reference.attention import flex
from fmspec.suites import bench_attention as ba


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    from torch.nn.attention.flex_attention import create_block_mask

    rows, started = [], time.time()
    for T in (4096, 16384):
        B, H, D = min(4, 16384 // T), 16, 64
        q, k, v = (torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        for family, args in ba.GPU_ARGS.items():
            row = {"family": family, "T": T, "B": B}
            try:
                with torch.no_grad():
                    ref.sparse(q, k, v, family, **args)  # compile
                    row["reference_ms"] = gb.time_ms(lambda: ref.sparse(q, k, v, family, **args)).median_ms
                    bm = flex.block_mask(family, T, "cuda", **args)
                    row["patched_every_call_ms"] = gb.time_ms(lambda: flex.attend(q, k, v, bm, 1 / math.sqrt(D))).median_ms
                    tbm = create_block_mask(flex.mask_mod(family, T, "cuda", **args), None, None, T, T, device="cuda")
                    flex.attend(q, k, v, tbm, 1 / math.sqrt(D))
                    row["flex_ms"] = gb.time_ms(lambda: flex._compiled()(q, k, v, tbm, 1 / math.sqrt(D))).median_ms
                    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                        causal = family in ba.CAUSAL
                        row["sdpa_flash_ms"] = gb.time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)).median_ms
                row["x_flex"] = row["flex_ms"] / row["reference_ms"]
                row["x_sdpa_flash"] = row["sdpa_flash_ms"] / row["reference_ms"]
            except Exception as exc:  # recorded, and the next point goes on
                row["error"] = repr(exc)[:300]
            rows.append(row)
            print(json.dumps(row), flush=True)
            (out / "attention_flex_gpu.json").write_text(json.dumps({"device": torch.cuda.get_device_name(),
                                                                      "torch": torch.__version__, "rows": rows}, indent=1))
    print(f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
