"""flash benchmarks: forward and forward+backward speed on one GPU (run with ``--fmspec-bench``).

Grid (the issue's): bf16, B·T = 16k tokens, H = 2048/D, D in {64, 128}, T from 1k to 16k, causal or not.
Cost model (Triton's fused-attention tutorial, FlashAttention-2 paper):

    forward FLOPs   = 4·B·H·T²·D          (two matmuls of 2·T²·D each per head; causal: half)
    backward FLOPs  = 2.5 × forward       (five matmuls instead of two)
    bytes (fewest)  = forward: q, k, v read and o written (4·B·H·T·D elements);
                      forward+backward: that, plus q, k, v, o, dO read and dq, dk, dv written (12 in all)

Each point records the candidate's device time (median, spread), TFLOP/s, fraction of the measured
matmul ceiling, and the speedup against the reference and against each torch SDPA backend (flash, cuDNN,
memory-efficient) measured on the same inputs in the same run (``fmspec/gpu_bench.py``). A candidate is
timed only if it passed the flash conformance tests earlier in the run.
"""

from __future__ import annotations

import pytest
import torch

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb
from fmspec.suites import strategies as ss

pytestmark = [pytest.mark.component("flash"), pytest.mark.bench, pytest.mark.gpu]
FEATURE = "flash.flash_attention"
TOKENS = 16384
HEAD_DIMS = [64, 128]
SEQS = [1024, 2048, 4096, 8192, 16384]
MODES = ["fwd", "fwd_bwd"]
_BASELINES: dict[tuple, gb.Timing | None] = {}  # (name, D, T, causal, mode) -> timing, shared by candidates


def cost(B, H, T, D, causal, mode) -> gb.Cost:
    fwd = 4 * B * H * T * T * D * (0.5 if causal else 1.0)
    elems = B * H * T * D * 2  # bytes of one bf16 (B, H, T, D) tensor
    if mode == "fwd":
        return gb.Cost(fwd, 4 * elems, "4·B·H·T²·D (causal: half); bytes: q, k, v read, o written")
    return gb.Cost(3.5 * fwd, 12 * elems, "3.5 × 4·B·H·T²·D (bwd = 2.5 × fwd); bytes: 4 fwd + 8 bwd tensors")


def _timing(fn, q, k, v, do, mode) -> gb.Timing:
    if mode == "fwd":
        def run():
            with torch.no_grad():
                fn(q, k, v)
        grads = None
    else:
        def run():
            fn(q, k, v).backward(do)
        grads = [q, k, v]
    run()  # compilation and autotuning stay out of the timing
    torch.cuda.synchronize()
    return gb.time_ms(run, grad_to_none=grads)


def _sdpa(backend):
    from torch.nn.attention import sdpa_kernel

    def fn(q, k, v, causal):
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return fn


def _baselines(D, T, causal, mode, q, k, v, do) -> dict[str, gb.Timing | None]:
    from torch.nn.attention import SDPBackend

    from fmspec.reference import flash as ref_flash  # the speed reference (timed, never used as an answer)

    impls = {"reference": lambda q, k, v: ref_flash.flash_attention(q, k, v, causal=causal)}
    for name, backend in (("sdpa_flash", SDPBackend.FLASH_ATTENTION), ("sdpa_cudnn", SDPBackend.CUDNN_ATTENTION),
                          ("sdpa_efficient", SDPBackend.EFFICIENT_ATTENTION)):
        impls[name] = (lambda f: lambda q, k, v: f(q, k, v, causal))(_sdpa(backend))
    out = {}
    for name, fn in impls.items():
        key = (name, D, T, causal, mode)
        if key not in _BASELINES:
            try:
                _BASELINES[key] = gb.numbers(_timing(fn, q, k, v, do, mode))
            except RuntimeError:  # a backend this device or shape does not support
                _BASELINES[key] = None
        out[name] = _BASELINES[key]
    return out


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("T", SEQS, ids=lambda t: f"T{t}")
@pytest.mark.parametrize("D", HEAD_DIMS, ids=lambda d: f"D{d}")
def test_flash_attention_speed(candidate, device, dtype, D, T, causal, mode, benchmark, fmspec_metrics, request):
    conformance = bu.require_conformance(request, "flash", candidate.name)
    B, H = TOKENS // T, 2048 // D
    q, k, v = (t.requires_grad_() for t in ss.qkv(B, H, T, T, D, seed=T + D, dtype=dtype, device=device))
    do = torch.randn_like(q)
    baselines = _baselines(D, T, causal, mode, q, k, v, do)
    timing = _timing(lambda q, k, v: candidate.flash.flash_attention(q, k, v, causal=causal), q, k, v, do, mode)
    values = gb.summary(timing, cost(B, H, T, D, causal, mode), gb.ceilings(device, dtype), baselines)
    values.update({"B": B, "H": H, "T": T, "D": D, "causal": causal, "mode": mode, "dtype": "bfloat16",
                   "conformance": conformance})
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)
