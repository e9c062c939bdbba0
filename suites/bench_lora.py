"""lora benchmarks: one LoRA layer's training step and inference on one GPU (bf16; run with ``--fmspec-bench``).

Grid: a square layer d_in = d_out = d in {1024, 4096} with bias, rank r in {8, 64}, alpha = 2·r (scaling 2),
T in {4096, 16384} tokens. B is set to random values (a layer after some training: B = 0 would let the
update vanish), the same A and B in every LoRA implementation.

**Training step** (``test_lora_forward_backward_speed``): the forward pass and the gradients of the input and
of A and B (``torch.autograd.grad``, so nothing accumulates between repetitions), beside what a user would
run instead, on the same input:

* ``base_linear``: the frozen ``nn.Linear`` alone (forward and input gradient): the floor LoRA adds to;
* ``linear_trainable``: the same ``nn.Linear`` with its weight and bias trained (full finetuning's layer);
* ``peft``: peft's LoRA ``Linear`` (``peft.tuners.lora.layer.Linear``, adapter weights in the base's dtype),
  skipped with the reason when peft does not import.

**Inference** (``test_lora_inference_speed``): the forward pass under ``torch.no_grad`` of the unmerged layer,
against the same layer after ``merge()`` (W ← W + (alpha/r)·B A: the base layer's cost), the base layer, and
peft's layer unmerged and merged.

Cost model, T tokens (bf16 elements of e = 2 bytes)::

    training   FLOPs = T · (4·d² + 12·r·d)      base forward and input gradient (2 + 2 per weight and token,
                                                the frozen base has no weight gradient), LoRA forward (2 per
                                                LoRA weight and token) and input, A and B gradients (3 × 2)
               bytes = e · (4·T·d + d² + 4·r·d)   x and dY read, Y and dX written, W read, A and B read and
                                                their gradients written (the fewest: activations touched once)
    inference  FLOPs = T · (2·d² + 4·r·d),   bytes = e · (2·T·d + d² + 2·r·d)

Each point records the candidate's device time (median, p20, p80), TFLOP/s, GB/s, the fraction of the measured
ceilings (``fmspec/gpu_bench.py``) and the speedup against every peer, measured in the same process. A
candidate is timed only if it passed the lora conformance tests earlier in the run.
``test_bench_points_run_on_cpu`` runs every point's code on CPU at a tiny size, with a stand-in timer, and
checks that the candidate and peft compute the same thing (the comparison is of equal work).
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import pytest
import torch
from torch import nn

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb
from fmspec.suites import asserts as ah

pytestmark = [pytest.mark.component("lora"), pytest.mark.bench]
FEATURE = "lora.LoRALinear"
WIDTHS = [1024, 4096]
RANKS = [8, 64]
TOKENS = [4096, 16384]
ALPHA_PER_RANK = 2.0  # alpha = 2·r: peft's examples (r = 8, alpha = 16)
_BASELINES: dict[tuple, gb.Timing | None] = {}  # (name, mode, d, r, tokens, device, dtype) -> timing


def peft_missing() -> str | None:
    """Why peft's layer is not measured, or None when peft imports."""
    try:
        import peft  # noqa: F401
    except ImportError as exc:
        return f"peft not importable ({exc})"
    return None


# -------------------------------------------------------------------------------------------- the layers
def _base(d: int, device: str, dtype: torch.dtype) -> nn.Linear:
    with torch.random.fork_rng(devices=[device] if device == "cuda" else []):
        torch.manual_seed(d)
        return nn.Linear(d, d, bias=True, device=device, dtype=dtype)


def _candidate_layer(candidate, base: nn.Linear, r: int) -> nn.Module:
    """The candidate's layer on a copy of ``base``, with B set away from zero (same values on every call)."""
    layer = candidate.lora.LoRALinear(copy.deepcopy(base), r, ALPHA_PER_RANK * r)
    with torch.no_grad():
        layer.A.copy_(gb.randn(tuple(layer.A.shape), 1, base.weight.device.type, base.weight.dtype,
                            1 / math.sqrt(base.in_features)))
        layer.B.copy_(gb.randn(tuple(layer.B.shape), 2, base.weight.device.type, base.weight.dtype, 1 / math.sqrt(r)))
    return layer


def _peft_layer(base: nn.Linear, A: torch.Tensor, B: torch.Tensor) -> nn.Module | None:
    """peft's LoRA Linear on a copy of ``base`` with the given A (r, in) and B (out, r); None without peft."""
    if peft_missing():
        return None
    import peft

    r = A.shape[0]
    config = peft.LoraConfig(r=r, lora_alpha=ALPHA_PER_RANK * r)
    layer = peft.tuners.lora.layer.Linear(copy.deepcopy(base), "default", config=config, r=r,
                                          lora_alpha=ALPHA_PER_RANK * r)
    layer.base_layer.requires_grad_(False)  # peft's layer freezes nothing itself (get_peft_model does)
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(A)
        layer.lora_B["default"].weight.copy_(B)
    return layer


def _step(module: nn.Module, x: torch.Tensor, g: torch.Tensor, wrt: list[torch.Tensor]) -> Callable[[], tuple]:
    """Forward, then the gradients of ``wrt`` (the input first) against the output gradient ``g``."""
    def run():
        y = module(x)
        return (y, *torch.autograd.grad(y, wrt, g))
    return run


def _infer(module: nn.Module, x: torch.Tensor) -> Callable[[], torch.Tensor]:
    def run():
        with torch.no_grad():
            return module(x)
    return run


def training_fns(candidate, d: int, r: int, tokens: int, device: str, dtype: torch.dtype) -> dict:
    """name -> a call returning (y, dx, ...): the candidate's layer and its peers (None: not available)."""
    base = _base(d, device, dtype)
    x = gb.randn((tokens, d), 3, device, dtype).requires_grad_()
    g = gb.randn((tokens, d), 4, device, dtype)
    layer = _candidate_layer(candidate, base, r)
    trainable = copy.deepcopy(base).requires_grad_(True)
    peft_layer = _peft_layer(base, layer.A.detach(), layer.B.detach())
    frozen = copy.deepcopy(base).requires_grad_(False)
    return {
        "candidate": _step(layer, x, g, [x, layer.A, layer.B]),
        "base_linear": _step(frozen, x, g, [x]),
        "linear_trainable": _step(trainable, x, g, [x, trainable.weight, trainable.bias]),
        "peft": _step(peft_layer, x, g, [x, peft_layer.lora_A["default"].weight, peft_layer.lora_B["default"].weight])
        if peft_layer is not None else None,
    }


def inference_fns(candidate, d: int, r: int, tokens: int, device: str, dtype: torch.dtype) -> dict:
    """name -> a call returning y under no_grad: the candidate's layer unmerged and merged, and its peers."""
    base = _base(d, device, dtype)
    x = gb.randn((tokens, d), 3, device, dtype)
    layer, merged = _candidate_layer(candidate, base, r), _candidate_layer(candidate, base, r)
    merged.merge()
    peft_layer = _peft_layer(base, layer.A.detach(), layer.B.detach())
    peft_merged = _peft_layer(base, layer.A.detach(), layer.B.detach())
    if peft_merged is not None:
        peft_merged.merge()
    return {"candidate": _infer(layer, x), "merged": _infer(merged, x), "base_linear": _infer(base, x),
            "peft": _infer(peft_layer, x) if peft_layer is not None else None,
            "peft_merged": _infer(peft_merged, x) if peft_merged is not None else None}


# ------------------------------------------------------------------------------------------ the points
def cost(d: int, r: int, tokens: int, mode: str, element_size: int) -> gb.Cost:
    if mode == "fwd_bwd":
        return gb.Cost(tokens * (4 * d * d + 12 * r * d), element_size * (4 * tokens * d + d * d + 4 * r * d),
                       "T·(4·d² + 12·r·d); bytes e·(4·T·d + d² + 4·r·d)")
    return gb.Cost(tokens * (2 * d * d + 4 * r * d), element_size * (2 * tokens * d + d * d + 2 * r * d),
                   "T·(2·d² + 4·r·d); bytes e·(2·T·d + d² + 2·r·d)")


def _timed(fn: Callable | None, timer) -> gb.Timing | None:
    if fn is None:
        return None
    fn()  # lazy initialisation stays out of the timing
    return timer(fn)


def point(candidate, mode: str, d: int, r: int, tokens: int, device: str, dtype: torch.dtype,
          timer=gb.time_ms, ceiling: dict | None = None) -> tuple[dict, gb.Timing]:
    """Every number of one point (mode "fwd_bwd" or "infer"): the candidate timed, each peer timed once per
    process and shape (shared by candidates), the values ready for ``bu.record``."""
    build = training_fns if mode == "fwd_bwd" else inference_fns
    fns = build(candidate, d, r, tokens, device, dtype)
    timing = _timed(fns.pop("candidate"), timer)
    baselines = {}
    for name, fn in fns.items():
        key = (name, mode, d, r, tokens, device, dtype)
        if key not in _BASELINES or name == "merged":  # the candidate's own merged layer is not shared
            _BASELINES[key] = gb.numbers(_timed(fn, timer))
        baselines[name] = _BASELINES[key]
    ceiling = ceiling or gb.ceilings(device, dtype)
    values = gb.summary(timing, cost(d, r, tokens, mode, torch.finfo(dtype).bits // 8), ceiling, baselines)
    values.update({"mode": mode, "d": d, "r": r, "alpha": ALPHA_PER_RANK * r, "tokens": tokens,
                   "dtype": str(dtype).removeprefix("torch."), "peft": peft_missing() or "measured",
                   "us_per_token": timing.median_ms * 1e3 / tokens})
    return values, timing


def _gpu_test(candidate, mode, device, dtype, d, r, tokens, benchmark, fmspec_metrics, request) -> None:
    conformance = bu.require_conformance(request, "lora", candidate.name)
    values, timing = point(candidate, mode, d, r, tokens, device, dtype)
    values["conformance"] = conformance
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)


GRID = [pytest.mark.gpu, pytest.mark.needs(FEATURE), pytest.mark.parametrize("device", ["cuda"]),
        pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")]),
        pytest.mark.parametrize("tokens", TOKENS, ids=lambda t: f"T{t}"),
        pytest.mark.parametrize("r", RANKS, ids=lambda r: f"r{r}"),
        pytest.mark.parametrize("d", WIDTHS, ids=lambda d: f"d{d}")]


def _grid(test):
    for mark in reversed(GRID):
        test = mark(test)
    return test


@_grid
def test_lora_forward_backward_speed(candidate, device, dtype, d, r, tokens, benchmark, fmspec_metrics, request):
    """Forward + gradients of x, A, B against the frozen base layer, full finetuning's layer and peft's layer."""
    _gpu_test(candidate, "fwd_bwd", device, dtype, d, r, tokens, benchmark, fmspec_metrics, request)


@_grid
def test_lora_inference_speed(candidate, device, dtype, d, r, tokens, benchmark, fmspec_metrics, request):
    """Unmerged forward against the merged layer, the base layer and peft's layer (unmerged, merged)."""
    _gpu_test(candidate, "infer", device, dtype, d, r, tokens, benchmark, fmspec_metrics, request)


# ------------------------------------------------------------------------------------- the CPU dry run
@pytest.mark.needs(FEATURE)
def test_bench_points_run_on_cpu(candidate, request):
    """Every point's code on CPU at a tiny size (float64, stand-in timer): the numbers exist, and the
    candidate computes what its peers compute (peft's layer; the merged layer), so the GPU run compares
    equal work."""
    bu.require_in_process(candidate)
    bu.require_conformance(request, "lora", candidate.name)
    torch.set_num_threads(1)  # tiny tensors: threads only contend (the plugin restores the setting after the test)
    d, r, tokens, dtype = 8, 2, 5, torch.float64
    for mode in ("fwd_bwd", "infer"):
        values, _ = point(candidate, mode, d, r, tokens, "cpu", dtype, timer=gb.dry_time, ceiling=gb.DRY_CEILING)
        assert values["median_ms"] == 1.0 and values["tflops"] > 0 and values["speedup_vs_base_linear"] == 1.0, values
    same = {"fwd_bwd": ["peft"], "infer": ["merged", "peft", "peft_merged"]}
    for mode, build in (("fwd_bwd", training_fns), ("infer", inference_fns)):
        fns = build(candidate, d, r, tokens, "cpu", dtype)
        ours = fns["candidate"]()
        ours = ours if isinstance(ours, tuple) else (ours,)
        for name in same[mode]:
            if fns[name] is None:
                continue  # peft not installed: nothing to compare
            theirs = fns[name]()
            theirs = theirs if isinstance(theirs, tuple) else (theirs,)
            for i, (a, b) in enumerate(zip(ours, theirs)):
                ah.assert_close(a.detach(), b.detach(), dtype=dtype, n=d + r, name=f"{mode} output {i}",
                                where=f"candidate vs {name}, d={d}, r={r}, T={tokens}")
