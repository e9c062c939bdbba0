"""gpt benchmarks: a training step of the run-mode model per candidate, and the time to the target
perplexity (one GPU, bf16 autocast; run with ``--fmspec-bench``).

The model is ``gpt.RUN``'s (d = 256, L = 4, H = 8, T = 256, batches of 64, tiny-shakespeare at V = 2048,
3.7M parameters) built from the candidate's pieces, with the blocks' attention from
``attention.scaled_dot_product`` (dense) or ``flash.flash_attention`` (flash).

Cost model (the accounting component's, lecture 003): a training step of N parameters on D = B·T tokens
costs 6·N·D FLOPs (forward 2·N·D, backward 4·N·D); MFU = 6·N·D / (P·t), P the bf16 matmul rate measured on
this device (``fmspec/gpu_bench.py``, a datasheet peak would flatter nobody), t the device time of the step
(median of repetitions timed with CUDA events). The attention's own 12·L·B·T²·d FLOPs are recorded
apart (``attention_flops``) and, as in the formula, not counted.

Recorded per step: time (median, spread), tokens/s, peak memory the allocator held during the step,
MFU, and the speedup against the reference's composition with the same attention. The time to target:
the run mode until the training perplexity (eval mode, fixed batches, every 50 steps) reaches the
reference's after 50 epochs plus 10%, with the curve of evaluations against time. A candidate is timed
only if it passed the gpt conformance tests earlier in the run.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb
from fmspec.reference import accounting, gpt
from fmspec.suites import _gpt_helpers as gh

pytestmark = [pytest.mark.component("gpt"), pytest.mark.bench, pytest.mark.gpu]
TARGET_MARGIN = 0.10  # a candidate's composition must reach the reference's final training perplexity + 10%
EVAL_EVERY = 50
_CACHE: dict = {}  # the run-mode data, the reference's step timings and its run: once per process


def run_data() -> gpt.Data:
    if "data" not in _CACHE:
        _CACHE["data"] = gpt.tokenize(gpt.read_corpus(gpt.corpus_path(), gpt.RUN.chars), gpt.RUN.vocab_size)
    return _CACHE["data"]


def run_train(device: str, steps: int | None = None) -> gpt.TrainConfig:
    return replace(gpt.RUN.train, steps=steps or gpt.steps_for(gpt.RUN, run_data()), device=device,
                   autocast=torch.bfloat16, eval_every=EVAL_EVERY)


def step_timing(parts: gpt.Parts, attention: str, device: str) -> tuple[gb.Timing, int, int]:
    """Device time of one training step, the allocator's peak during one, and the parameter count."""
    data = run_data()
    cfg = replace(gpt.RUN.model, attention=attention, vocab_size=data.vocab_size)
    tcfg = run_train(device, steps=1)
    with torch.random.fork_rng(devices=[torch.device(device)]):
        model = gpt.GPT(cfg, parts)
        step = gpt.step_function(model, tcfg, data)
        for _ in range(3):  # warm-up: autotuning, the allocator's pools
            step()
        torch.cuda.synchronize(device)
        timing = gb.time_ms(step)
        peak = gb.allocator_peak(step, device)
    return timing, peak, model.n_params()


@pytest.mark.needs("gpt.Block")
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("attention", ["dense", "flash"])
def test_training_step_speed(candidate, device, dtype, attention, benchmark, fmspec_metrics, request):
    conformance = bu.require_conformance(request, "gpt", candidate.name)
    parts = gh.parts_of(candidate)
    key = ("reference", attention)
    if key not in _CACHE:  # first: the candidate's timing keeps its model (its step) until pytest-benchmark's rounds
        _CACHE[key] = gb.numbers(step_timing(gpt.Parts.reference(), attention, device)[0])
    timing, peak, n_params = step_timing(parts, attention, device)
    cfg, B = gpt.RUN.model, gpt.RUN.train.batch
    tokens = B * cfg.context
    seconds = timing.median_ms * 1e-3
    ceiling = gb.ceilings(device, dtype)
    values = {
        "attention": attention, "B": B, "T": cfg.context, "d": cfg.d, "L": cfg.n_layers, "params": n_params,
        "median_ms": timing.median_ms, "p20_ms": timing.p20_ms, "p80_ms": timing.p80_ms, "spread": timing.spread,
        "tokens_per_s": tokens / seconds, "peak_bytes": peak,
        "flops": 6 * n_params * tokens, "cost_model": "6·N·B·T (attention's 12·L·B·T²·d apart)",
        "attention_flops": 12 * cfg.n_layers * B * cfg.context ** 2 * cfg.d,
        "mfu": accounting.mfu(n_params, tokens, 1, ceiling["matmul_tflops"] * 1e12, seconds),
        "ceiling_matmul_tflops": ceiling["matmul_tflops"], "reference_ms": _CACHE[key].median_ms,
        "speedup_vs_reference": _CACHE[key].median_ms / timing.median_ms, "pieces": parts.used(cfg),
        "conformance": conformance, "dtype": "bfloat16",
    }
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)


def time_to_target(result: gpt.Result, target_ppl: float) -> dict:
    """The first evaluation whose training perplexity is at most ``target_ppl``: its seconds and step."""
    for e in result.evals:
        if math.exp(e["train_loss"]) <= target_ppl:
            return {"seconds_to_target": e["seconds"], "steps_to_target": e["step"]}
    return {"seconds_to_target": None, "steps_to_target": None}


@pytest.mark.needs("gpt.Block")
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
def test_time_to_target(candidate, device, dtype, benchmark, fmspec_metrics, request):
    conformance = bu.require_conformance(request, "gpt", candidate.name)
    data = run_data()
    cfg = replace(gpt.RUN.model, vocab_size=data.vocab_size)
    if "reference run" not in _CACHE:
        _CACHE["reference run"] = gpt.train(cfg, run_train(device), data)
    ref = _CACHE["reference run"]
    target = math.exp(ref.evals[-1]["train_loss"]) * (1 + TARGET_MARGIN)
    parts = gh.parts_of(candidate)
    got = gpt.train(cfg, run_train(device), data, parts, stop=lambda e: math.exp(e["train_loss"]) <= target)
    values = {"target_train_ppl": target, "reference_final_train_ppl": math.exp(ref.evals[-1]["train_loss"]),
              "reference_final_val_ppl": math.exp(ref.evals[-1]["val_loss"]),
              **{f"reference_{k}": v for k, v in time_to_target(ref, target).items()},
              **time_to_target(got, target), "steps_run": len(got.losses), "pieces": got.pieces,
              "curve": [(round(e["seconds"], 3), round(math.exp(e["train_loss"]), 3)) for e in got.evals],
              "conformance": conformance}
    bu.record(benchmark, fmspec_metrics, values)
    assert values["seconds_to_target"] is not None, (
        f"the training perplexity never reached the target {target:.2f} (the reference's after 50 epochs + "
        f"{TARGET_MARGIN:.0%}): {values['curve'][-3:]} [pieces {got.pieces}]")
