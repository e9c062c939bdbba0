"""Check and time the flash kernels on one GPU, in one process (the device is lent by the minute).

    python benchmarks/flash_gpu.py --out DIR [--check] [--grid] [--dims 64,128] [--seqs 1024,...,16384]

``--check``: the Triton kernels (autotuned and fixed blocks, TMA and plain loads, fp16 and bf16, D from
32 to 256, T not a multiple of the block, Tq != Tk, causal or not) against float64 dense attention, forward,
lse and gradients, each judged against twice the error of plain same-dtype PyTorch attention (the
suite's rule, ``suites/tolerances.py``); and the allocator peak of forward+backward against T.
``--grid``: the issue's grid (bf16, B·T = 16k tokens, H = 2048/D), forward and forward+backward, for the
reference kernel and the three torch SDPA backends (flash, cuDNN, efficient), device-timed by
``fmspec/gpu_bench.py``. Writes DIR/flash_gpu.json and prints a table last.
``--repeats N``: the whole grid N times (the run-to-run spread of the medians).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
try:  # the installed fmspec (a wheel, or the checkout's editable install)
    import fmspec.reference  # noqa: F401
except ImportError:  # a bare checkout
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

from fmspec.reference import flash as ref_flash  # noqa: E402
from fmspec.reference import flash_triton as ft  # noqa: E402
from fmspec import gpu_bench as gb  # noqa: E402
from fmspec.suites import tolerances as tol  # noqa: E402

SDPA = {"sdpa_flash": SDPBackend.FLASH_ATTENTION, "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
        "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION}


def log(*a):
    print(*a, flush=True)


# ------------------------------------------------------------------------------------------------ check
def dense(q, k, v, causal, scale):
    s = (q @ k.transpose(-1, -2)) * scale
    if causal:
        keep = torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device).tril()
        s = s.masked_fill(~keep, float("-inf"))
    return torch.softmax(s, -1) @ v, torch.logsumexp(s.float() if s.dtype != torch.float64 else s, -1)


def check_case(B, H, Tq, Tk, D, dtype, causal, block_q=None, block_k=None, use_tma=None, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    x64 = [torch.randn(B, H, t, D, device="cuda", dtype=torch.float64, generator=g) for t in (Tq, Tk, Tk)]
    do64 = torch.randn(B, H, Tq, D, device="cuda", dtype=torch.float64, generator=g)
    scale = 1 / math.sqrt(D)
    # oracle (float64) first
    o_ref = [t.clone().requires_grad_() for t in x64]
    o64, lse64 = dense(*o_ref, causal, scale)
    g64 = torch.autograd.grad((o64 * do64).sum(), o_ref)
    # same-dtype plain PyTorch baseline
    base = [t.to(dtype).requires_grad_() for t in x64]
    ob, _ = dense(*base, causal, scale)
    gb_ = torch.autograd.grad(ob, base, do64.to(dtype))
    # the kernel
    xs = [t.to(dtype).requires_grad_() for t in x64]
    out = torch.full((B, H, Tq, D), float("nan"), device="cuda", dtype=dtype)  # poison: every element written?
    o, lse = ft.attention(*xs, causal=causal, scale=scale, block_q=block_q, block_k=block_k, use_tma=use_tma)
    out.copy_(o)
    grads = torch.autograd.grad(o, xs, do64.to(dtype))
    res = {"B": B, "H": H, "Tq": Tq, "Tk": Tk, "D": D, "dtype": str(dtype)[6:], "causal": causal,
           "block_q": block_q, "block_k": block_k, "tma": use_tma, "ok": True}
    n = max(Tk, 1) * D
    checks = [("o", out, o64, ob), ("lse", lse, lse64, None)] + [
        (name, a, r, b) for name, a, r, b in zip(("dq", "dk", "dv"), grads, g64, gb_)]
    for name, actual, oracle, baseline in checks:
        if name in ("dq", "dk") and Tk == 1:
            continue  # one key: dQ = dK = 0 exactly, a relative error is undefined
        err = tol.rel_error(actual, oracle)
        limit = tol.allowed(dtype if name != "lse" else torch.float32, n,
                            tol.rel_error(baseline, oracle) if baseline is not None else None)
        if name == "lse":  # the scores are rounded to the input dtype before any kernel sees them
            limit = tol.allowed(dtype, D)
        res[name] = f"{err:.1e}/{limit:.1e}"
        res["ok"] &= bool(err <= limit)
    return res


def run_checks(results, args):
    cases = []
    for dtype in (torch.bfloat16, torch.float16):
        for D in (64, 128):
            for causal in (False, True):
                for (B, H, Tq, Tk) in ((2, 3, 1, 1), (2, 3, 65, 65), (1, 2, 1000, 1000), (2, 2, 257, 130),
                                       (2, 2, 130, 257)):
                    if dtype == torch.float16 and Tq != 1000:
                        cases.append(dict(B=B, H=H, Tq=Tq, Tk=Tk, D=D, dtype=dtype, causal=causal, block_q=64,
                                          block_k=32))
                    elif dtype == torch.bfloat16:
                        cases.append(dict(B=B, H=H, Tq=Tq, Tk=Tk, D=D, dtype=dtype, causal=causal))
    for D in (32, 256):
        for causal in (False, True):
            cases.append(dict(B=2, H=2, Tq=200, Tk=131, D=D, dtype=torch.bfloat16, causal=causal, block_q=32,
                              block_k=32))
    for causal in (False, True):  # plain loads (no TMA)
        cases.append(dict(B=2, H=2, Tq=300, Tk=300, D=128, dtype=torch.bfloat16, causal=causal, block_q=128,
                          block_k=64, use_tma=False))
        cases.append(dict(B=2, H=2, Tq=130, Tk=257, D=64, dtype=torch.bfloat16, causal=causal, use_tma=False))
    for c in cases:
        t = time.time()
        try:
            r = check_case(**c)
        except Exception as exc:  # a broken configuration is a result, not a crash of the whole call
            r = {**{k: str(v) for k, v in c.items()}, "ok": False, "error": repr(exc)[:300]}
            traceback.print_exc()
        r["seconds"] = round(time.time() - t, 2)
        results["checks"].append(r)
        log("CHECK", "ok " if r["ok"] else "BAD", json.dumps(r, default=str))


def run_memory(results):
    """Allocator peak of forward+backward at growing T: linear for the kernel, quadratic for dense math."""
    rows = []
    for T in (2048, 4096, 8192):
        q, k, v = [torch.randn(1, 8, T, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)]
        do = torch.randn_like(q)

        def step():
            o = ref_flash.flash_attention(q, k, v, causal=True)
            o.backward(do)
        step()
        peak = gb.allocator_peak(step)
        rows.append({"T": T, "peak_bytes": peak})
        log("MEM", T, peak)
    results["memory"] = rows


# ------------------------------------------------------------------------------------------------- grid
def cost(B, H, T, D, causal, mode):
    fwd = 4 * B * H * T * T * D * (0.5 if causal else 1.0)
    elem = B * H * T * D * 2
    if mode == "fwd":
        return gb.Cost(fwd, 4 * elem, "fwd: 4·B·H·T²·D (causal: half); bytes: q, k, v read, o written")
    return gb.Cost(3.5 * fwd, 12 * elem, "fwd+bwd: 3.5 × fwd (bwd = 2.5 × fwd); bytes: fwd + q, k, v, o, dO read, "
                   "dq, dk, dv written")


def timed(fn, grads, timer=None):
    """Device time of ``fn`` after one untimed call (``timer``: ``gb.time_ms``, or ``gb.dry_time`` on CPU)."""
    fn()  # autotuning and compilation happen here, outside the timing
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (timer or gb.time_ms)(fn, grad_to_none=grads)


def run_grid(results, args):
    ceiling = gb.ceilings()
    results["ceilings"] = ceiling
    log("CEILINGS", json.dumps(ceiling))
    for repeat in range(args.repeats):
        run_grid_once(results, args, repeat)


def run_grid_once(results, args, repeat):
    for D in args.dims:
        for causal in (False, True):
            for T in args.seqs:
                B, H = max(16384 // T, 1), 2048 // D
                q, k, v = [torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
                           for _ in range(3)]
                do = torch.randn_like(q)
                impls = {"reference": lambda: ref_flash.flash_attention(q, k, v, causal=causal)}
                if args.tma_compare:
                    impls["reference_notma"] = lambda: ft.attention(q, k, v, causal=causal, use_tma=False)[0]
                for name, backend in SDPA.items():
                    impls[name] = (lambda b=backend: _sdpa(q, k, v, causal, b))
                for mode in ("fwd", "fwd_bwd"):
                    row = {"D": D, "causal": causal, "T": T, "B": B, "H": H, "mode": mode}
                    c = cost(B, H, T, D, causal, mode)
                    for name, f in impls.items():
                        try:
                            if mode == "fwd":
                                with torch.no_grad():
                                    tm = timed(f, None)
                            else:
                                tm = timed(lambda f=f: f().backward(do), [q, k, v])
                            row[name] = round(tm.median_ms, 4)
                            row[name + "_spread"] = round(tm.spread, 3)
                            row[name + "_tflops"] = round(c.flops / tm.median_ms / 1e9, 1)
                        except Exception as exc:
                            row[name] = None
                            row[name + "_error"] = repr(exc)[:200]
                    for base in SDPA:
                        if row.get(base) and row.get("reference"):
                            row["x_" + base] = round(row[base] / row["reference"], 3)
                    row["repeat"] = repeat
                    results["grid"].append(row)
                    log("GRID", json.dumps(row))
                    args.save(results)
                del q, k, v, do
                torch.cuda.empty_cache()


def _sdpa(q, k, v, causal, backend):
    with sdpa_kernel(backend):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


def table(results) -> str:
    lines = ["| repeat | D | causal | T | mode | ref TFLOP/s | flash | cuDNN | efficient | x flash | x cuDNN |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results["grid"]:
        lines.append(f"| {r.get('repeat', 0)} | {r['D']} | {r['causal']} | {r['T']} | {r['mode']} | "
                     f"{r.get('reference_tflops')} | "
                     f"{r.get('sdpa_flash_tflops')} | {r.get('sdpa_cudnn_tflops')} | {r.get('sdpa_efficient_tflops')} | "
                     f"{r.get('x_sdpa_flash')} | {r.get('x_sdpa_cudnn')} |"
                     + (f" notma {r.get('reference_notma_tflops')}" if 'reference_notma_tflops' in r else ""))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--tma-compare", action="store_true")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--seqs", default="1024,2048,4096,8192,16384")
    args = ap.parse_args()
    args.dims = [int(x) for x in args.dims.split(",")]
    args.seqs = [int(x) for x in args.seqs.split(",")]
    torch.backends.cuda.matmul.allow_tf32 = False
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
               "triton": __import__("triton").__version__, "checks": [], "grid": []}
    out = Path(args.out) / "flash_gpu.json"
    args.save = lambda res: out.write_text(json.dumps(res, indent=1, default=str))
    t0 = time.time()
    try:
        if args.check:
            run_checks(results, args)
            run_memory(results)
            out.write_text(json.dumps(results, indent=1, default=str))
        if args.grid:
            run_grid(results, args)
    finally:
        results["seconds"] = round(time.time() - t0, 1)
        out.write_text(json.dumps(results, indent=1, default=str))
        bad = [c for c in results["checks"] if not c["ok"]]
        log(f"\nchecks: {len(results['checks']) - len(bad)} ok, {len(bad)} bad; {results['seconds']} s")
        for c in bad:
            log("BAD", json.dumps(c, default=str)[:400])
        if results["grid"]:
            log(table(results))


if __name__ == "__main__":
    main()
