"""What bounds the flash forward on Hopper, and two ideas measured against the kernel as it is, in one process.

    python benchmarks/flash_profile_gpu.py --out DIR [--budget-s 420] [--dry]

Writes DIR/flash_profile.json (every number, saved after each point) and DIR/flash_profile.md (the tables).
The grid is ``flash_gpu.py``'s: bf16, B·T = 16384 tokens, H = 2048/D, D in {64, 128}, T in {1k .. 16k},
causal or not; FLOPs fwd = 4·B·H·T²·D (causal: half), fwd+bwd = 3.5 × fwd.

1. **configs**: at every grid point, the autotuned winner of each kernel (forward, dK/dV, dQ): BLOCK_M/N,
   warps, stages, TMA, maxnreg; registers a thread and spills (``CompiledKernel.n_regs`` / ``n_spills``,
   read as Triton's fused-softmax tutorial does: ``warmup`` then ``_init_handles``), shared memory
   (``metadata.shared``), and the programs an SM can hold at once (``ctas_per_sm``, from those three and the
   device's limits). The autotuner's own timings of every config, where it tuned at that point (it tunes
   once per (T bucket, D, causal): T = 1k/2k and 4k/8k share one).
2. **ablation**: the forward, non-causal, D in {64, 128}, T in {4k, 16k}, at the winner's config: the
   reference kernel; ``_fwd_probe`` (this file) with everything on (the copy costs what the kernel costs);
   without the softmax (P = S, cast); without the P·V matmul (acc += rowsum(P) ⊗ colsum(V), keeping V's
   load); without the Q·Kᵀ matmul (S = a broadcast of K's row sums, keeping K's load); with neither matmul
   (softmax and loads alone). ``share_*`` = 1 − t(without it)/t(all): the time the part adds. When the three
   shares sum to about 1, the parts run one after the other (nothing overlaps the softmax).
3. **ideas**: every forward grid point, the winner's config (as is) against configs the autotuning space does
   not hold, launched the same way on the same inputs: two programs per SM (``maxnreg`` = 128, two stages:
   ``flash_triton.TWO_PER_SM_FWD``), the same tiles without the register cap, other stage counts. ``x_as_is``
   = t(as is)/t(candidate): above 1 the candidate is faster. ``max_abs_diff`` against the as-is output.
4. **peers**: SDPA's flash and cuDNN backends at every grid point, forward and forward+backward, timed by the
   same code (``flash_gpu.py``'s, device events, L2 flushed).

``--dry``: the same code paths on CPU under Triton's interpreter (TRITON_INTERPRET=1), D in {64, 128}, T = 128,
B·H = 1, a stand-in timer; winners are the first configs of each space; resources come from compiling those
configs for sm_90 (``triton.compile`` with a Hopper target) and reading the cubin with ``cuobjdump``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

DRY = "--dry" in sys.argv
if DRY:
    os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: every @triton.jit below is interpreted

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402

from fmspec import gpu_bench as gb  # noqa: E402
from fmspec.reference import flash_triton as ft  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flash_gpu as fg  # noqa: E402  (the grid's cost model, SDPA launch and timing)

_load, _desc, _store, _rowmax, _rowsum, _add_combine = ft._load, ft._desc, ft._store, ft._rowmax, ft._rowsum, ft._add_combine
PEERS = {"sdpa_flash": fg.SDPA["sdpa_flash"], "sdpa_cudnn": fg.SDPA["sdpa_cudnn"]}
ABLATION = [("all", True, True, True), ("no_softmax", False, True, True), ("no_pv", True, True, False),
            ("no_qk", True, False, True), ("softmax_only", True, False, False)]  # (name, SOFTMAX, QK, PV)
EXTRA_FWD = {64: [(128, 128, 8, 3, 128), (128, 128, 8, 4, None)],
             128: [(128, 64, 8, 2, None), (128, 64, 8, 3, None)]}  # beside TWO_PER_SM_FWD (idea 2: stages)


def log(*a):
    print(*a, flush=True)


# ------------------------------------------------------------------------------- the ablation copy
@triton.jit
def _colsum(x):
    return tl.reduce(x, 0, _add_combine)


@triton.jit
def _fwd_probe(Q, K, V, O, L, qk_scale, Tq, Tk, L_stride, T_BUCKET,
               D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, CAUSAL: tl.constexpr,
               USE_TMA: tl.constexpr, SOFTMAX: tl.constexpr, QK: tl.constexpr, PV: tl.constexpr):
    """``flash_triton._attn_fwd`` without causal masking (Tk a multiple of BLOCK_N), each part switchable."""
    pid_m = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    m0 = pid_m * BLOCK_M
    q_base = Q + bh * Tq * D
    k_base = K + bh * Tk * D
    v_base = V + bh * Tk * D
    o_base = O + bh * Tq * D
    q_desc = _desc(q_base, Tq, BLOCK_M, D, USE_TMA)
    k_desc = _desc(k_base, Tk, BLOCK_N, D, USE_TMA)
    v_desc = _desc(v_base, Tk, BLOCK_N, D, USE_TMA)
    o_desc = _desc(o_base, Tq, BLOCK_M, D, USE_TMA)
    offs_m = m0 + tl.arange(0, BLOCK_M)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.full([BLOCK_M], 1.0, tl.float32)
    acc = tl.full([BLOCK_M, D], 0.0, tl.float32)
    q = _load(q_base, q_desc, m0, Tq, BLOCK_M, D, USE_TMA)
    for start_n in tl.range(0, Tk, BLOCK_N):
        start_n = tl.multiple_of(start_n, BLOCK_N)
        k = _load(k_base, k_desc, start_n, Tk, BLOCK_N, D, USE_TMA)
        if QK:
            qk = tl.dot(q, tl.trans(k))  # (BM, BN) fp32
        else:  # K is still loaded: S = K's row sums, broadcast over the rows
            qk = tl.full([BLOCK_M, BLOCK_N], 0.0, tl.float32) + _rowsum(k.to(tl.float32))[None, :]
        if SOFTMAX:
            m_ij = tl.maximum(m_i, _rowmax(qk) * qk_scale)
            p = tl.math.exp2(qk * qk_scale - m_ij[:, None])
            alpha = tl.math.exp2(m_i - m_ij)
            l_i = l_i * alpha + _rowsum(p)
            acc = acc * alpha[:, None]
            m_i = m_ij
        else:  # P = S, cast
            p = qk
        v = _load(v_base, v_desc, start_n, Tk, BLOCK_N, D, USE_TMA)
        if PV:
            acc = tl.dot(p.to(v.dtype), v, acc)
        else:  # V is still loaded: acc += rowsum(P) ⊗ colsum(V)
            acc = acc + _rowsum(p)[:, None] * _colsum(v.to(tl.float32))[None, :]
    acc = acc / l_i[:, None]
    tl.store(L + bh * L_stride + offs_m, m_i + tl.math.log2(l_i), mask=offs_m < Tq)
    _store(o_base, o_desc, m0, Tq, acc.to(O.dtype.element_ty), BLOCK_M, D, USE_TMA)


# -------------------------------------------------------------------------------------- launching
def cfg_dict(cfg) -> dict:
    """A triton.Config (or a (BM, BN, warps, stages, maxnreg, tma) tuple) as plain launch keywords."""
    if isinstance(cfg, tuple):
        bm, bn, w, s, cap, tma = cfg
        return {"BLOCK_M": bm, "BLOCK_N": bn, "USE_TMA": tma, "num_warps": w, "num_stages": s, "maxnreg": cap}
    return {**cfg.kwargs, "num_warps": cfg.num_warps, "num_stages": cfg.num_stages, "maxnreg": cfg.maxnreg}


def cfg_name(c: dict) -> str:
    cap = f" r{c['maxnreg']}" if c.get("maxnreg") else ""
    return f"{c['BLOCK_M']}x{c['BLOCK_N']} w{c['num_warps']} s{c['num_stages']}{cap}{' tma' if c['USE_TMA'] else ''}"


def launch_kw(c: dict) -> dict:
    kw = dict(c)
    if kw.get("maxnreg") is None:
        kw.pop("maxnreg", None)
    return kw


class Fwd:
    """The forward's arguments at one point, and raw launches of ``_attn_fwd`` / ``_fwd_probe`` with them."""

    def __init__(self, q, k, v, causal):
        B, H, T, D = q.shape
        self.q, self.k, self.v, self.causal, self.D, self.T, self.BH = q, k, v, causal, D, T, B * H
        self.o = torch.empty_like(q)
        self.L_stride = triton.cdiv(T, ft.LSE_PAD) * ft.LSE_PAD
        self.lse2 = torch.full((B * H, self.L_stride), float("inf"), dtype=torch.float32, device=q.device)
        self.args = (q, k, v, self.o, self.lse2, D ** -0.5 * ft.LOG2E, T, T, self.L_stride, ft._bucket(T))

    def fn(self, c: dict, probe: tuple | None = None):
        grid = (triton.cdiv(self.T, c["BLOCK_M"]), self.BH)
        extra = {} if probe is None else dict(zip(("SOFTMAX", "QK", "PV"), probe))
        kern = ft._attn_fwd if probe is None else _fwd_probe

        def run():
            with ft._mode(DRY):  # interpreter patches in --dry; nothing on GPU
                kern[grid](*self.args, D=self.D, CAUSAL=self.causal, **launch_kw(c), **extra)
            return self.o
        return run


# -------------------------------------------------------------------------------------- resources
def device_limits() -> dict:
    if DRY:
        return {"smem_per_sm": 233472, "regs_per_sm": 65536, "threads_per_sm": 2048}
    p = torch.cuda.get_device_properties(0)
    return {"smem_per_sm": getattr(p, "shared_memory_per_multiprocessor", 233472),
            "regs_per_sm": getattr(p, "regs_per_multiprocessor", 65536),
            "threads_per_sm": getattr(p, "max_threads_per_multi_processor", 2048)}


def ctas_per_sm(regs: int, shared: int, warps: int, lim: dict) -> int:
    """Programs one SM holds at once: registers (allocated per warp in units of 256), shared memory (1 KiB
    reserved per program), threads."""
    per_warp = math.ceil(max(regs, 1) * 32 / 256) * 256
    return min(lim["regs_per_sm"] // (per_warp * warps), lim["smem_per_sm"] // (shared + 1024),
               lim["threads_per_sm"] // (32 * warps), 32)


SIG = {"fwd": "Q K V O L", "dkdv": "Q K V DO L DELTA DK DV", "dq": "Q K V DO L DELTA DQ"}
SCALARS = {"fwd": "qk_scale Tq Tk L_stride T_BUCKET", "dkdv": "qk_scale sm_scale Tq Tk L_stride T_BUCKET",
           "dq": "qk_scale sm_scale Tq Tk L_stride T_BUCKET"}
KERNELS = {"fwd": "_attn_fwd", "dkdv": "_attn_bwd_dkdv", "dq": "_attn_bwd_dq"}


_COMPILED = []


def compiled_copy():
    """The reference module loaded once more with the interpreter off (under --dry, ``ft``'s kernels are
    interpreted functions, which the compiler cannot take)."""
    if not _COMPILED:
        import importlib.util

        spec = importlib.util.spec_from_file_location(ft.__name__ + "_compiled", ft.__file__)
        module = importlib.util.module_from_spec(spec)
        with triton.knobs.runtime.scope():
            triton.knobs.runtime.interpret = False
            spec.loader.exec_module(module)
        _COMPILED.append(module)
    return _COMPILED[0]


def resources_compiled(kind: str, c: dict, D: int, causal: bool) -> dict:
    """CPU: compile for sm_90 (no GPU needed) and read registers / stack from the cubin with cuobjdump."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    import re

    sig = {n: ("*fp32" if n in ("L", "DELTA") else "*bf16") for n in SIG[kind].split()}
    sig.update({n: ("fp32" if "scale" in n else "i32") for n in SCALARS[kind].split()})
    consts = {"D": D, "BLOCK_M": c["BLOCK_M"], "BLOCK_N": c["BLOCK_N"], "CAUSAL": causal, "USE_TMA": c["USE_TMA"]}
    fn = getattr(compiled_copy(), KERNELS[kind])
    src = ASTSource(fn=fn, signature={**sig, **{k: "constexpr" for k in consts}}, constexprs=consts)
    opts = {"num_warps": c["num_warps"], "num_stages": c["num_stages"]}
    if c.get("maxnreg"):
        opts["maxnreg"] = c["maxnreg"]
    with triton.knobs.runtime.scope():
        triton.knobs.runtime.interpret = False
        kern = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(kern.asm["cubin"])
        f.flush()
        out = subprocess.run([str(cuobjdump), "-res-usage", f.name], capture_output=True, text=True).stdout
    use = {k: int(v) for k, v in re.findall(r"(REG|STACK|LOCAL):(\d+)", out)}
    return {"regs": use.get("REG"), "spills": use.get("STACK", 0) + use.get("LOCAL", 0), "shared": kern.metadata.shared,
            "source": "sm_90 compile on CPU (cuobjdump: spills = stack + local bytes)"}


def resources_loaded(kind: str, c: dict, args: tuple, D: int, causal: bool) -> dict:
    """GPU: the compiled kernel of this config, loaded (Triton's fused-softmax tutorial reads n_regs this way)."""
    kern = getattr(ft, KERNELS[kind]).warmup(*args, grid=(1,), D=D, CAUSAL=causal, **launch_kw(c))
    kern._init_handles()  # private: Triton has no public way to load a kernel (n_regs is set by the load)
    return {"regs": kern.n_regs, "spills": kern.n_spills, "shared": kern.metadata.shared,
            "source": "CompiledKernel.n_regs / n_spills (bytes) / metadata.shared"}


def resources(kind, c, args, D, causal, lim) -> dict:
    try:
        r = resources_compiled(kind, c, D, causal) if DRY else resources_loaded(kind, c, args, D, causal)
        r["ctas_per_sm"] = ctas_per_sm(r["regs"], r["shared"], c["num_warps"], lim)
        return r
    except Exception as exc:
        traceback.print_exc()
        return {"error": repr(exc)[:300]}


# -------------------------------------------------------------------------------------- sections
def timer(fn, grads=None):
    return fg.timed(fn, grads, timer=gb.dry_time if DRY else gb.time_ms)


def winners(kind_tuned, fresh_before):
    """The autotuner's choice at this call, and its timings of every config when it tuned just now."""
    cfg = cfg_dict(kind_tuned.best_config)
    tuned_now = getattr(kind_tuned, "bench_time", None) != fresh_before
    timings = ({cfg_name(cfg_dict(c)): [round(float(x), 4) for x in (t if isinstance(t, (list, tuple)) else [t])]
                for c, t in kind_tuned.configs_timings.items()} if tuned_now else None)
    return cfg, timings


def dry_winner(kind: str) -> dict:
    return cfg_dict([c for c in ft._configs(kind) if not c.kwargs["USE_TMA"]][0])


def point_tensors(B, H, T, D, device):
    q, k, v = [torch.randn(B, H, T, D, device=device, dtype=torch.bfloat16, requires_grad=True) for _ in range(3)]
    return q, k, v, torch.randn_like(q)


def reference(q, k, v, causal):
    return ft.attention(q, k, v, causal=causal, interpret=DRY)[0]


def run_point(res, D, causal, T, B, H, lim, device):
    q, k, v, do = point_tensors(B, H, T, D, device)
    # 1. configs: one forward and one backward through the autotuned kernels
    tuned = {"fwd": ft._attn_fwd_tuned, "dkdv": ft._attn_bwd_dkdv_tuned, "dq": ft._attn_bwd_dq_tuned}
    before = {kd: getattr(t, "bench_time", None) for kd, t in tuned.items()}
    o = reference(q, k, v, causal)
    o.backward(do)
    point = {"D": D, "causal": causal, "T": T, "B": B, "H": H}
    fwd = Fwd(q.detach(), k.detach(), v.detach(), causal)
    delta = torch.empty_like(fwd.lse2)
    bwd_args = (q, k, v, do, fwd.lse2, delta)
    scal = (fwd.args[5], D ** -0.5, T, T, fwd.L_stride, ft._bucket(T))
    args = {"fwd": fwd.args, "dkdv": (*bwd_args, q.grad, k.grad, *scal), "dq": (*bwd_args, q.grad, *scal)}
    for kind, t in tuned.items():
        cfg, timings = (dry_winner(kind), None) if DRY else winners(t, before[kind])
        row = {**point, "kernel": kind, "config": cfg_name(cfg), **cfg, **resources(kind, cfg, args[kind], D, causal, lim)}
        if timings:
            row["autotune_ms"] = timings
        res["configs"].append(row)
        log("CONFIG", json.dumps(row, default=str))
    # 4. the grid and its peers
    impls = {"reference": lambda: reference(q, k, v, causal)}
    impls.update({n: (lambda b=b: fg._sdpa(q, k, v, causal, b)) for n, b in PEERS.items()})
    for mode in ("fwd", "fwd_bwd"):
        row = {**point, "mode": mode}
        c = fg.cost(B, H, T, D, causal, mode)
        for name, f in impls.items():
            try:
                if mode == "fwd":
                    with torch.no_grad():
                        tm = timer(f)
                else:
                    tm = timer(lambda f=f: f().backward(do), [q, k, v])
                row[name] = round(tm.median_ms, 4)
                row[name + "_spread"] = round(tm.spread, 3)
                row[name + "_tflops"] = round(c.flops / tm.median_ms / 1e9, 1)
            except Exception as exc:  # a peer missing on this device is a result, not a crash
                row[name] = None
                row[name + "_error"] = repr(exc)[:200]
        for base in PEERS:
            if row.get(base) and row.get("reference"):
                row["x_" + base] = round(row[base] / row["reference"], 3)
        if row.get("reference") and res.get("ceilings"):
            row["fraction_of_matmul_ceiling"] = round(row["reference_tflops"] * 1e3 / res["ceilings"]["matmul_tflops"] / 1e3, 3)
        res["grid"].append(row)
        log("GRID", json.dumps(row))
    fwd_cfg = next(r for r in reversed(res["configs"]) if r["kernel"] == "fwd")
    fwd.o_autotuned = o.detach()
    return fwd, {k: fwd_cfg[k] for k in ("BLOCK_M", "BLOCK_N", "USE_TMA", "num_warps", "num_stages", "maxnreg")}


def run_ablation(res, fwd: Fwd, c: dict, lim):
    """2. the forward at the winner's config, each part switched off in the copy."""
    B_H, T, D = fwd.BH, fwd.T, fwd.D
    row = {"D": D, "T": T, "BH": B_H, "config": cfg_name(c)}
    with torch.no_grad():
        row["reference"] = round(timer(fwd.fn(c)).median_ms, 4)
        o_ref = fwd.o.clone()
        for name, *switches in ABLATION:
            try:
                row[name] = round(timer(fwd.fn(c, tuple(switches))).median_ms, 4)
                if name == "all":
                    row["all_max_abs_diff"] = float((fwd.o.float() - o_ref.float()).abs().max())
            except Exception as exc:
                traceback.print_exc()
                row[name + "_error"] = repr(exc)[:200]
    if row.get("all"):
        for name in ("no_softmax", "no_pv", "no_qk"):
            if row.get(name):
                row["share_" + name[3:]] = round(1 - row[name] / row["all"], 3)
        row["sum_of_shares"] = round(sum(row.get(k, 0) for k in ("share_softmax", "share_pv", "share_qk")), 3)
        if row.get("softmax_only"):
            row["softmax_only_fraction"] = round(row["softmax_only"] / row["all"], 3)
            row["softmax_only_exp2_per_ns"] = round(B_H * T * T / (row["softmax_only"] * 1e6), 1)
        row["matmul_only_ms"] = round(4 * B_H * T * T * D / (res["ceilings"]["matmul_tflops"] * 1e9), 4)
    res["ablation"].append(row)
    log("ABLATION", json.dumps(row))


def candidates(D: int, tma: bool) -> list[dict]:
    two = [t for t in getattr(ft, "TWO_PER_SM_FWD", []) if D * t[1] <= 64 * 128]
    return [cfg_dict((*t, tma)) for t in two + EXTRA_FWD.get(D, [])]


def run_ideas(res, fwd: Fwd, c: dict, lim):
    """3. as is against each candidate config, same inputs, same launch path."""
    row = {"D": fwd.D, "causal": fwd.causal, "T": fwd.T, "as_is_config": cfg_name(c)}
    with torch.no_grad():
        row["as_is"] = round(timer(fwd.fn(c)).median_ms, 4)
        o_ref = fwd.o.clone()  # the raw launch computes what the autotuned call did (same config on GPU)
        row["as_is_max_abs_diff_vs_autotuned"] = float((o_ref.float() - fwd.o_autotuned.float()).abs().max())
        best = ("as is", row["as_is"])
        for cand in candidates(fwd.D, c["USE_TMA"]):
            name = cfg_name(cand)
            if name == row["as_is_config"]:
                continue
            entry = {"config": name}
            try:
                entry["ms"] = round(timer(fwd.fn(cand)).median_ms, 4)
                entry["x_as_is"] = round(row["as_is"] / entry["ms"], 3)
                entry["max_abs_diff"] = float((fwd.o.float() - o_ref.float()).abs().max())
                if res.get("resources_of_candidates") is not None and (fwd.D, fwd.causal, name) not in res["_seen"]:
                    res["_seen"].add((fwd.D, fwd.causal, name))
                    r = resources("fwd", cand, fwd.args, fwd.D, fwd.causal, lim)
                    res["resources_of_candidates"].append({"D": fwd.D, "causal": fwd.causal, "config": name, **r})
                if entry["ms"] < best[1]:
                    best = (name, entry["ms"])
            except Exception as exc:
                traceback.print_exc()
                entry["error"] = repr(exc)[:200]
            row.setdefault("candidates", []).append(entry)
        row["best"], row["best_x_as_is"] = best[0], round(row["as_is"] / best[1], 3)
    res["ideas"].append(row)
    log("IDEAS", json.dumps(row))


# -------------------------------------------------------------------------------------- report
def markdown(res) -> str:
    out = [f"# flash profile: {res['device']} (torch {res['torch']}, triton {res['triton']})", "",
           f"ceilings: {json.dumps(res.get('ceilings'))}; {res.get('seconds')} s; skipped: {res.get('skipped') or 'nothing'}",
           "", "## 1. autotuned winners (registers a thread, spill bytes, shared KiB, programs an SM holds)", "",
           "| D | causal | T | kernel | config | regs | spills | smem KiB | CTAs/SM |", "| --- " * 9 + "|"]
    for r in res["configs"]:
        sh = r.get("shared")
        out.append(f"| {r['D']} | {r['causal']} | {r['T']} | {r['kernel']} | {r['config']} | {r.get('regs')} | "
                   f"{r.get('spills')} | {round(sh / 1024, 1) if sh is not None else r.get('error')} | {r.get('ctas_per_sm')} |")
    out += ["", "## 2. forward ablation, non-causal (ms; share = 1 − t(without)/t(all))", "",
            "| D | T | config | reference | copy, all on | no softmax | no PV | no QK | softmax only | share softmax "
            "| share PV | share QK | sum | matmuls at ceiling |", "| --- " * 15 + "|"]
    for r in res["ablation"]:
        out.append("| " + " | ".join(str(r.get(k)) for k in (
            "D", "T", "config", "reference", "all", "no_softmax", "no_pv", "no_qk", "softmax_only", "share_softmax",
            "share_pv", "share_qk", "sum_of_shares", "matmul_only_ms")) + " |")
    out += ["", "## 3. ideas: the winner's config (as is) against configs outside the space (x = t(as is)/t)", "",
            "| D | causal | T | as is | ms | candidates (x as is) | best | x |", "| --- " * 8 + "|"]
    for r in res["ideas"]:
        cands = "; ".join(f"{e['config']}: {e.get('x_as_is', e.get('error', '')[:40])}" for e in r.get("candidates", []))
        out.append(f"| {r['D']} | {r['causal']} | {r['T']} | {r['as_is_config']} | {r['as_is']} | {cands} | "
                   f"{r['best']} | {r['best_x_as_is']} |")
    if res.get("resources_of_candidates"):
        out += ["", "candidates' resources: " + "; ".join(
            f"D={r['D']} {r['config']}: regs {r.get('regs')}, spills {r.get('spills')}, CTAs/SM {r.get('ctas_per_sm')}"
            for r in res["resources_of_candidates"] if not r["causal"])]
    out += ["", "## 4. the grid and SDPA in the same process (TFLOP/s; x = t(SDPA)/t(reference))", "",
            "| D | causal | T | mode | reference | of matmul ceiling | SDPA flash | SDPA cuDNN | x flash | x cuDNN |",
            "| --- " * 10 + "|"]
    for r in res["grid"]:
        out.append("| " + " | ".join(str(r.get(k)) for k in (
            "D", "causal", "T", "mode", "reference_tflops", "fraction_of_matmul_ceiling", "sdpa_flash_tflops",
            "sdpa_cudnn_tflops", "x_sdpa_flash", "x_sdpa_cudnn")) + " |")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--dry", action="store_true", help="CPU, Triton's interpreter, tiny shapes")
    ap.add_argument("--budget-s", type=float, default=420.0, help="stop starting new work after this long")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--seqs", default="128" if DRY else "1024,2048,4096,8192,16384")
    ap.add_argument("--ablation-seqs", default="128" if DRY else "4096,16384")
    args = ap.parse_args()
    dims = [int(x) for x in args.dims.split(",")]
    seqs = [int(x) for x in args.seqs.split(",")]
    ablation_seqs = {int(x) for x in args.ablation_seqs.split(",")}
    device = "cpu" if DRY else "cuda"
    if not DRY:
        assert torch.cuda.is_available(), "no CUDA device (use --dry on CPU)"
        torch.backends.cuda.matmul.allow_tf32 = False
        ft._set_allocator(torch.device("cuda"))
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = {"device": "cpu (dry)" if DRY else torch.cuda.get_device_name(), "torch": torch.__version__,
           "triton": triton.__version__, "dry": DRY, "configs": [], "ablation": [], "ideas": [], "grid": [],
           "resources_of_candidates": [], "_seen": set(), "skipped": []}
    lim = device_limits()
    res["limits"] = lim
    t0 = time.time()

    def save():
        res["seconds"] = round(time.time() - t0, 1)
        clean = {k: v for k, v in res.items() if not k.startswith("_")}
        (out_dir / "flash_profile.json").write_text(json.dumps(clean, indent=1, default=str))
        (out_dir / "flash_profile.md").write_text(markdown(res))

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))  # an outer timeout still leaves the tables
    try:
        res["ceilings"] = gb.DRY_CEILING if DRY else gb.ceilings()
        log("CEILINGS", json.dumps(res["ceilings"]))
        for D in dims:
            for causal in (False, True):
                for T in seqs:
                    if time.time() - t0 > args.budget_s:
                        res["skipped"].append(f"D={D} causal={causal} T={T}: budget")
                        continue
                    B, H = (1, 1) if DRY else (max(16384 // T, 1), 2048 // D)
                    fwd, cfg = run_point(res, D, causal, T, B, H, lim, device)
                    if not causal and T in ablation_seqs:
                        run_ablation(res, fwd, cfg, lim)
                    run_ideas(res, fwd, cfg, lim)
                    save()
                    del fwd
                    if not DRY:
                        torch.cuda.empty_cache()
    finally:
        save()
        log(markdown(res))


if __name__ == "__main__":
    main()
