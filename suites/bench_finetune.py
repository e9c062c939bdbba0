"""finetune benchmarks (one GPU, bf16; run with ``--fmspec-bench``): what QLoRA saves in memory and what it
costs in time, against LoRA on bf16 weights and full bf16 finetuning.

Model: L = 4 square ``nn.Linear`` layers of width d (no bias), bf16, every layer a target; r = 16, alpha = 32,
QLoRA block size 64; a batch of 8 × 512 = 4096 tokens.

**Memory** (bytes, measured: the CUDA allocator around building the model, A and B included, and around
one training step; AdamW's state tensors; the gradients; the modules' buffers, the stored state), for: full
finetuning in bf16 (every weight trains), LoRA on bf16 weights (``fmspec.reference.lora``), the candidate's
QLoRA (nf4 and int8-block), and peft's LoRA on bitsandbytes' 4-bit layers (nf4, double quantization) where
bitsandbytes imports. AdamW keeps two states in
each trainable parameter's dtype (torch's default; no float32 master copy). Expected weights: bf16 16 bits
a weight; QLoRA nf4 4 + 8/64 + 32/(64·256) = 4.127 bits a weight (int8-block 8.5) plus the bf16 A and B.

**Time** (device events, ``fmspec/gpu_bench.py``): one forward + backward of the whole model (loss = sum of
the output) on the 4096 tokens, per token, against LoRA on bf16 weights (same shapes, same r) and against
peft + bitsandbytes. Cost model per layer, T tokens::

    FLOPs = T · (4·d² + 12·r·d)      base forward and input gradient (2 + 2 per weight and token; the
                                     frozen base has no weight gradient), LoRA forward, input and weight
                                     gradients (3 × 2 per LoRA weight and token, r·2d LoRA weights)
    bytes = 2 · stored base bytes + 4 · 2·d²     the stored weight read by the forward and by the backward
                                     dequantization, each writing and reading back a bf16 (d, d) weight
                                     (the fewest bytes of dequantizing outside the matmul; activations left out)

A candidate is timed only if it passed the finetune conformance tests earlier in the run.
"""

from __future__ import annotations

import gc

import pytest
import torch
from torch import nn

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb

pytestmark = [pytest.mark.component("finetune"), pytest.mark.bench, pytest.mark.gpu]
FEATURE = "finetune.apply_qlora"
LAYERS, RANK, ALPHA, BLOCK = 4, 16, 32.0, 64
BATCH, SEQ = 8, 512
WIDTHS = [2048, 4096]
QUANTS = ["nf4", "int8-block"]
PEER_MISSING = "skipped: bitsandbytes or peft not importable"
_BASELINES: dict[tuple, dict] = {}  # (name, d) -> measurements, shared by candidates


def _stack(d: int, device: str, dtype: torch.dtype) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(*[nn.Linear(d, d, bias=False, device=device, dtype=dtype) for _ in range(LAYERS)])


TARGETS = [str(i) for i in range(LAYERS)]


def _lora_bf16(d, device, dtype):
    from fmspec.reference import lora as ref_lora  # the baseline (timed, never used as an answer)

    return ref_lora.apply_lora(_stack(d, device, dtype), TARGETS, RANK, ALPHA)


def _full_bf16(d, device, dtype):
    return _stack(d, device, dtype)


def _peft_bnb(d, device, dtype):
    """peft's LoRA on bitsandbytes' Linear4bit (nf4, double quantization, bf16 compute); None without them."""
    try:
        import bitsandbytes as bnb
        import peft
    except ImportError:
        return None
    model = _stack(d, "cpu", dtype)
    for i, layer in enumerate(list(model)):
        q = bnb.nn.Linear4bit(d, d, bias=False, compute_dtype=dtype, compress_statistics=True, quant_type="nf4")
        q.weight = bnb.nn.Params4bit(layer.weight.data, requires_grad=False, compress_statistics=True, quant_type="nf4")
        model[i] = q
    model = model.to(device)  # bitsandbytes quantizes on the move to the GPU
    config = peft.LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=TARGETS)
    model = peft.inject_adapter_in_model(config, model)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return model


def _allocated() -> int:
    gc.collect()
    torch.cuda.synchronize()
    return torch.cuda.memory_allocated()


def _inputs(d, device, dtype) -> torch.Tensor:
    return torch.randn(BATCH, SEQ, d, device=device, dtype=dtype)


def _memory(build, x: torch.Tensor) -> dict | None:
    """Bytes of weights (the allocator's growth while building), gradients and AdamW state after one step,
    and the allocator's peak during a training step; None if ``build`` gives nothing (a peer not installed)."""
    before = _allocated()
    model = build()
    if model is None:
        return None
    weights = _allocated() - before
    buffers = sum(t.numel() * t.element_size() for t in model.buffers())  # ours: the quantized state
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)

    def step():
        model(x).float().sum().backward()
        optimizer.step()

    peak = gb.allocator_peak(step)
    grads = sum(p.grad.numel() * p.grad.element_size() for p in trainable if p.grad is not None)
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                if isinstance(t, torch.Tensor) and t.dim() > 0)
    n = LAYERS * x.shape[-1] ** 2
    out = {"weight_bytes": weights, "weight_bits_per_base_weight": 8 * weights / n,
           "buffer_bits_per_base_weight": 8 * buffers / n if buffers else None, "grad_bytes": grads,
           "optimizer_bytes": state, "weights_grads_optimizer_bytes": weights + grads + state,
           "train_step_peak_bytes": peak, "trainable_parameters": sum(p.numel() for p in trainable)}
    del model, optimizer, trainable
    return out


def _timing(model: nn.Module | None, x: torch.Tensor) -> gb.Timing | None:
    if model is None:
        return None
    trainable = [p for p in model.parameters() if p.requires_grad]

    def run():
        model(x).float().sum().backward()

    run()  # lazy initialisation stays out of the timing
    torch.cuda.synchronize()
    return gb.time_ms(run, grad_to_none=trainable)  # the timing keeps run, and with it the model


def _baseline(name: str, d: int, device, dtype, x) -> dict:
    key = (name, d)
    if key not in _BASELINES:
        build = {"lora_bf16": _lora_bf16, "full_bf16": _full_bf16, "peft_bnb_nf4": _peft_bnb}[name]
        memory = _memory(lambda: build(d, device, dtype), x)
        timing = _timing(build(d, device, dtype), x) if memory is not None and name != "full_bf16" else None
        _BASELINES[key] = {"memory": memory, "timing": gb.numbers(timing)}
    return _BASELINES[key]


def cost(d: int, stored_bytes: float) -> gb.Cost:
    tokens = BATCH * SEQ
    flops = LAYERS * tokens * (4 * d * d + 12 * RANK * d)
    moved = 2 * stored_bytes + LAYERS * 4 * 2 * d * d
    return gb.Cost(flops, moved, "L·T·(4·d² + 12·r·d); bytes: stored base read twice + 4 bf16 (d, d) per layer")


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("d", WIDTHS, ids=lambda d: f"d{d}")
def test_qlora_memory(candidate, device, dtype, quant, d, fmspec_metrics, request):
    """Weights + gradients + AdamW state of the QLoRA model against full bf16 finetuning, LoRA on bf16 weights
    and peft + bitsandbytes (recorded; nothing asserted but that the numbers exist)."""
    conformance = bu.require_conformance(request, "finetune", candidate.name)
    x = _inputs(d, device, dtype)
    ours = _memory(lambda: candidate.finetune.apply_qlora(_stack(d, device, dtype), TARGETS, RANK, ALPHA, quant=quant,
                                                          block_size=BLOCK), x)
    values = {f"qlora_{k}": v for k, v in ours.items()}
    for name in ("full_bf16", "lora_bf16", "peft_bnb_nf4"):
        theirs = _baseline(name, d, device, dtype, x)["memory"]
        for k, v in (theirs or {}).items():
            values[f"{name}_{k}"] = v
        total = theirs["weights_grads_optimizer_bytes"] if theirs else None
        values[f"qlora_fraction_of_{name}"] = ours["weights_grads_optimizer_bytes"] / total if total else None
    values.update({"d": d, "layers": LAYERS, "r": RANK, "quant": quant, "block_size": BLOCK, "dtype": "bfloat16",
                   "tokens": BATCH * SEQ, "conformance": conformance,
                   "peer": "peft+bitsandbytes" if values.get("peft_bnb_nf4_weight_bytes") else PEER_MISSING})
    bu.record(None, fmspec_metrics, values)


@pytest.mark.needs(FEATURE)
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("d", WIDTHS, ids=lambda d: f"d{d}")
def test_qlora_forward_backward_speed(candidate, device, dtype, quant, d, benchmark, fmspec_metrics, request):
    """Forward + backward per token of the QLoRA model against LoRA on bf16 weights and peft + bitsandbytes."""
    conformance = bu.require_conformance(request, "finetune", candidate.name)
    x = _inputs(d, device, dtype)
    # the peers first: the candidate's timing keeps its model (its call) until pytest-benchmark's rounds
    baselines = {name: _baseline(name, d, device, dtype, x)["timing"] for name in ("lora_bf16", "peft_bnb_nf4")}
    model = candidate.finetune.apply_qlora(_stack(d, device, dtype), TARGETS, RANK, ALPHA, quant=quant,
                                           block_size=BLOCK)
    stored = sum(t.numel() * t.element_size() for t in model.buffers())  # the layers have no bias
    timing = _timing(model, x)
    values = gb.summary(timing, cost(d, stored), gb.ceilings(device, dtype), baselines)
    tokens = BATCH * SEQ
    values.update({"us_per_token": timing.median_ms * 1e3 / tokens, "d": d, "layers": LAYERS, "r": RANK,
                   "quant": quant, "block_size": BLOCK, "tokens": tokens, "dtype": "bfloat16",
                   "stored_base_bytes": stored, "conformance": conformance,
                   "peer": "peft+bitsandbytes" if baselines["peft_bnb_nf4"] else PEER_MISSING})
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)
