"""The gpt run mode and its benchmark on one GPU, in one process (the device is lent by the minute).

    python benchmarks/gpt_gpu.py --out DIR [--candidates reference,torch_native] [--steps N] [--chars N]
                                 [--device cuda] [--bench-reps N]

1. tokenize tiny-shakespeare with the reference BPE (V = 2048, trained on the first 90%);
2. the run mode (``gpt.RUN``: d = 256, L = 4, H = 8, T = 256, 3.7M parameters, 50 epochs of the training
   split in batches of 64, bf16 autocast, dropout 0.2) for each candidate's composition, the reference
   first: the loss at every step, and every 100 steps the training and validation loss (eval mode,
   16 fixed batches); the target is the reference's final training perplexity + 10%, and each
   composition's time to reach it is read off its evaluations; the validation loss is also given per
   character (loss per token x tokens per character), to set beside nanoGPT's character-level 1.47;
3. a training step of each composition with dense and with flash attention: device time (CUDA events,
   median of repetitions after warm-up), tokens/s, the allocator's peak, MFU = 6 N D / (P t) with P the
   measured bf16 matmul rate (the accounting component's formula).

Writes DIR/gpt_gpu.json (the environment, every number, the loss curves) and prints a table last.
``--device cpu --steps 3 --batch 2 --eval-batches 1 --chars 60000 --bench-reps 2`` runs the whole script in
well under a minute on a CPU (a check of the script, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fmspec import loader  # noqa: E402
from fmspec.reference import accounting, gpt  # noqa: E402

TARGET_MARGIN = 0.10
NANOGPT_CHAR_VAL_LOSS = 1.47  # nanoGPT's character-level model on tiny-shakespeare (its README): an anchor


def log(*a):
    print(*a, flush=True)


def _s(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f} s"


def parts_of(spec: str) -> gpt.Parts:
    cand = loader.load(spec)
    return gpt.Parts.from_candidate(cand.resolve, cand.name)


def step_time(parts: gpt.Parts, cfg: gpt.Config, tcfg: gpt.TrainConfig, data: gpt.Data, reps: int) -> dict:
    """Device (or, on a CPU, host) time of one training step: median and quartiles of ``reps`` steps after
    three warm-up steps; the allocator's peak over one step on CUDA."""
    cuda = tcfg.device.startswith("cuda")
    with torch.random.fork_rng(devices=[torch.device(tcfg.device)] if cuda else []):
        model = gpt.GPT(cfg, parts)
        step = gpt.step_function(model, tcfg, data)
        for _ in range(3):
            step()
        times = []
        for _ in range(reps):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                step()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t = time.perf_counter()
                step()
                times.append((time.perf_counter() - t) * 1e3)
        peak = None
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            step()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() - base
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return {"median_ms": statistics.median(times), "p25_ms": q[0], "p75_ms": q[2], "peak_bytes": peak,
            "params": model.n_params()}


def matmul_tflops(device: str) -> float | None:
    """The bf16 matmul rate of this device (n = 8192), the P of MFU; None on a CPU."""
    if not device.startswith("cuda"):
        return None
    n = 8192
    a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(20):
        a @ b
    end.record()
    end.synchronize()
    return 2 * n ** 3 * 20 / (start.elapsed_time(end) * 1e-3) / 1e12


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for gpt_gpu.json")
    ap.add_argument("--candidates", default="reference,torch_native")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--steps", type=int, default=None, help="override the run mode's steps (a quick check)")
    ap.add_argument("--chars", type=int, default=None, help="only the first N characters of the corpus")
    ap.add_argument("--batch", type=int, default=None, help="override the run mode's batch (a quick check)")
    ap.add_argument("--eval-batches", type=int, default=None, help="override the batches of each evaluation")
    ap.add_argument("--bench-reps", type=int, default=30)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = args.device.startswith("cuda")
    if cuda and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device here (use --device cpu for a check of the script)")
    torch.backends.cuda.matmul.allow_tf32 = True  # the speed of the model as one would train it
    doc: dict = {"env": {"python": platform.python_version(), "torch": torch.__version__,
                         "device": torch.cuda.get_device_name() if cuda else platform.processor() or "cpu"},
                 "args": vars(args)}
    t0 = time.perf_counter()

    t = time.perf_counter()
    text = gpt.read_corpus(gpt.corpus_path(), args.chars)
    data = gpt.tokenize(text, gpt.RUN.vocab_size)
    doc["data"] = {"chars": len(text), "train_tokens": len(data.train), "val_tokens": len(data.val),
                   "vocab_size": data.vocab_size, "seconds": time.perf_counter() - t}
    val_chars = len(text) - (text.find("\n", int(len(text) * 0.9)) + 1)
    tokens_per_char = len(data.val) / val_chars
    log(f"data: {len(text)} chars, {len(data.train)} + {len(data.val)} tokens at V = {data.vocab_size} "
        f"({doc['data']['seconds']:.1f} s)")

    cfg = replace(gpt.RUN.model, vocab_size=data.vocab_size)
    steps = args.steps or gpt.steps_for(gpt.RUN, data)
    tcfg = replace(gpt.RUN.train, steps=steps, device=args.device, autocast=torch.bfloat16 if cuda else None,
                   warmup=min(gpt.RUN.train.warmup, steps), eval_every=min(gpt.RUN.train.eval_every, steps),
                   batch=args.batch or gpt.RUN.train.batch,
                   eval_batches=args.eval_batches or gpt.RUN.train.eval_batches)
    doc["config"] = {"model": {k: v for k, v in vars(cfg).items()}, "steps": steps,
                     "epochs": steps * tcfg.batch * cfg.context / len(data.train),
                     "param_count_formula": gpt.param_count(cfg),
                     "lecture_params_12d2L_2dV": accounting.transformer_params(cfg.d, cfg.n_layers, cfg.vocab_size)}
    specs = [s for s in args.candidates.split(",") if s]
    runs, target = {}, None
    for spec in specs:
        parts = parts_of(spec)
        log(f"run mode, {spec}: {steps} steps ({doc['config']['epochs']:.1f} epochs)")
        result = gpt.train(cfg, tcfg, data, parts, progress=True)
        last = result.evals[-1]
        runs[spec] = {**result.summary(), "losses": [round(x, 4) for x in result.losses], "evals": result.evals,
                      "val_loss_per_char": last["val_loss"] * tokens_per_char}
        if target is None:  # the reference (first) sets the target
            target = math.exp(last["train_loss"]) * (1 + TARGET_MARGIN)
        hit = next((e for e in result.evals if math.exp(e["train_loss"]) <= target), None)
        runs[spec].update(target_train_ppl=target, seconds_to_target=hit and hit["seconds"],
                          steps_to_target=hit and hit["step"])
        log(f"  train ppl {math.exp(last['train_loss']):.2f}, val ppl {math.exp(last['val_loss']):.2f}, val loss "
            f"{runs[spec]['val_loss_per_char']:.3f} per char (nanoGPT char-level: {NANOGPT_CHAR_VAL_LOSS}), "
            f"{result.seconds:.1f} s, target {target:.2f} reached at {_s(runs[spec]['seconds_to_target'])}")
    doc["run"] = runs

    peak_tflops = matmul_tflops(args.device)
    bench = []
    for spec in specs:
        parts = parts_of(spec)
        for attention in ("dense", "flash"):
            c = replace(cfg, attention=attention)
            tb = replace(tcfg, steps=1)
            try:
                m = step_time(parts, c, tb, data, args.bench_reps)
            except Exception as exc:  # noqa: BLE001  one failing composition must not lose the others' numbers
                bench.append({"candidate": spec, "attention": attention, "error": f"{type(exc).__name__}: {exc}"})
                log(f"  {spec} {attention}: {type(exc).__name__}: {exc}")
                continue
            tokens = tb.batch * c.context
            sec = m["median_ms"] * 1e-3
            mfu = accounting.mfu(m["params"], tokens, 1, peak_tflops * 1e12, sec) if peak_tflops else None
            bench.append({"candidate": spec, "attention": attention, **m, "tokens_per_s": tokens / sec, "mfu": mfu})
    doc["bench"] = {"matmul_tflops_bf16": peak_tflops, "steps": bench,
                    "cost_model": "MFU = 6 N D / (P t): N parameters, D = B T tokens, P the measured bf16 matmul rate"}
    doc["seconds"] = time.perf_counter() - t0
    (out / "gpt_gpu.json").write_text(json.dumps(doc, indent=1, default=str))

    log(f"\n| candidate | train ppl | val ppl | val loss/char | run s | s to target ({target:.2f}) |")
    log("| --- | --- | --- | --- | --- | --- |")
    for spec, r in runs.items():
        log(f"| {spec} | {r['train_ppl']:.2f} | {r['val_ppl']:.2f} | {r['val_loss_per_char']:.3f} | "
            f"{r['seconds']:.1f} | {_s(r['seconds_to_target'])} |")
    log("\n| candidate | attention | ms/step | tokens/s | peak MiB | MFU |")
    log("| --- | --- | --- | --- | --- | --- |")
    for b in bench:
        if "error" in b:
            log(f"| {b['candidate']} | {b['attention']} | {b['error'][:60]} | | | |")
            continue
        peak = f"{b['peak_bytes'] / 2**20:.0f}" if b["peak_bytes"] is not None else "-"
        mfu = f"{b['mfu']:.1%}" if b["mfu"] is not None else "-"
        log(f"| {b['candidate']} | {b['attention']} | {b['median_ms']:.2f} | {b['tokens_per_s']:.0f} | {peak} | "
            f"{mfu} |")
    log(f"\nwrote {out / 'gpt_gpu.json'} in {doc['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
