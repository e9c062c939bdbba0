"""AllReduce bus bandwidth and DDP step time on the GPUs of one machine, NCCL underneath.

    python benchmarks/collectives_gpu.py --out DIR [--world N] [--dry]

One process per rank (``torch.multiprocessing``, spawned), torchrun's environment (MASTER_ADDR=127.0.0.1,
MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK): rank r on ``cuda:r``, nccl, NVLink multicast off
(``NCCL_NVLS_ENABLE=0``), nothing but the loopback interface. ``--world`` defaults to every GPU; ``--world 1``
on one GPU runs every code path on a world of one rank (no message is sent: busbw is 0 by its formula, the
times are the calls' fixed costs), the proof of the script before a machine of several GPUs. ``--dry``: CPU,
gloo, 2 ranks unless ``--world`` says otherwise, tiny sizes (a check of the plumbing, not a measurement).

1. **AllReduce**, float32, S = 1 KB .. 1 GB (x4 steps), sum, on every rank:
   ``ring``  the reference's ring (``fmspec.reference.collectives.all_reduce``: ReduceScatter + AllGather on
             point-to-point messages) through the suite's communicator (``suites/_collectives_helpers``'s
             ``Communicator``: NCCL send/recv, every payload byte counted);
   ``torch`` ``torch.distributed.all_reduce``, in place on the caller's tensor (NCCL's own ring or tree);
   ``naive`` the reference's ``naive_all_reduce`` (every tensor to rank 0, the result back).
   Cost model (nccl-tests' PERFORMANCE.md): algbw = S / t, busbw = algbw · 2(N-1)/N, what each rank's link
   carried for a bandwidth-optimal all-reduce; comparable across N and with the link's own bandwidth. The
   contract's functions copy the input and check every rank's arguments first (one small all_gather and a
   host synchronisation per call), which counts in their time at small S. Time: host clock around one call,
   the device synchronised before and after, each round after a barrier; a round's time is its slowest
   rank's; the median over the rounds after warm-up. The ring's and the naive's results are compared with
   torch's (max |difference| / max |value|) on every size.
2. **DDP step time**: a stack of ``fmspec.reference.gpt.Block`` (d = 768, H = 12, L = 4; B = 8 sequences of
   T = 256 a rank; float32 weights, TF32 matmuls), loss = mean(out^2), SGD(lr = 1e-3): one step is
   zero_grad, forward, backward (gradients averaged), optimizer step. ``none``: the local step without any
   communication (the floor); ``reference``: the reference ``DistributedDataParallel`` (buckets of 25 MB,
   each all-reduced by the reference ring on a background thread as its gradients are ready); ``torch``:
   ``torch.nn.parallel.DistributedDataParallel`` (bucket_cap_mb = 25). Same initial weights and batches;
   the reference's parameters after the timed steps are compared with torch's.
3. **NVLink**: ``nvidia-smi nvlink -s`` (each link's speed, summed per GPU) and ``nvidia-smi topo -m``,
   and whether each pair of GPUs can access each other's memory (``torch.cuda.can_device_access_peer``);
   "not reported" where none of it answers.

Writes DIR/collectives_gpu.json (environment, every round of every point) and DIR/collectives_gpu.md
(tables; the ring's busbw over NCCL's at S >= 256 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

SIZES = [2**10 * 4**k for k in range(11)]  # bytes: 1 KB, 4 KB, ..., 1 GB
DRY_SIZES = [2**10, 2**14, 2**16]
IMPLS = ("ring", "torch", "naive")
BIG = 2**28  # the ratio ring / torch busbw is given from 256 MB up (latency no longer counts)
GPT = dict(d=768, n_heads=12, n_layers=4, batch=8, context=256, steps=20, warmup=5)
DRY_GPT = dict(d=32, n_heads=2, n_layers=2, batch=2, context=16, steps=3, warmup=1)
BUCKET_BYTES = 25 * 2**20
PG_TIMEOUT = 300  # seconds: torch.distributed's own limit on any one operation
RESULT = "collectives_gpu.partial.json"  # rank 0's results, read back by the parent


def rounds_for(nbytes: int, dry: bool) -> tuple[int, int]:
    """(warm-up, timed) rounds for one size."""
    if dry:
        return 1, 3
    if nbytes <= 2**20:
        return 3, 20
    if nbytes <= 2**26:
        return 2, 10
    return (1, 5) if nbytes <= 2**28 else (1, 3)


def label(nbytes: int) -> str:
    if nbytes >= 2**30:
        return f"{nbytes // 2**30} GB"
    return f"{nbytes // 2**20} MB" if nbytes >= 2**20 else f"{nbytes // 2**10} KB"


# ------------------------------------------------------------------------------------------- one rank
def rank_main(rank: int, world: int, port: int, dry: bool, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world), NCCL_NVLS_ENABLE="0")
    from fmspec.suites import _collectives_helpers as ch

    lo = ch.loopback_interface()
    os.environ.update(GLOO_SOCKET_IFNAME=lo, NCCL_SOCKET_IFNAME=lo)
    torch.set_num_threads(1 if dry else 4)
    if dry:
        backend, device, kwargs = "gloo", torch.device("cpu"), {}
    else:
        backend, device = "nccl", torch.device("cuda", rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        kwargs = {"device_id": device}
    dist.init_process_group(backend, init_method="env://", timeout=timedelta(seconds=PG_TIMEOUT), **kwargs)
    group = dist.group.WORLD
    ch.connect_pairs(group, world, rank, device)  # every pair's communicator before the first ring
    result = {"all_reduce": bench_all_reduce(ch, group, world, rank, device, dry),
              "ddp": bench_ddp(ch, group, world, rank, device, dry)}
    if rank == 0:
        Path(out, RESULT).write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def slowest(times: list[float], device: torch.device, group) -> list[float]:
    """Each round's time on the slowest rank."""
    t = torch.tensor(times, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX, group=group)
    return t.cpu().tolist()


def bench_all_reduce(ch, group, world: int, rank: int, device: torch.device, dry: bool) -> list[dict]:
    from fmspec.reference import collectives as ref

    comm = ch.Communicator(rank, world, group, device, tag=1)
    records = []
    for nbytes in DRY_SIZES if dry else SIZES:
        gen = torch.Generator(device=device).manual_seed(1000 + rank)
        x = torch.randn(nbytes // 4, generator=gen, device=device)  # (S/4,) float32
        expected = x.clone()
        dist.all_reduce(expected, group=group)
        scale = expected.abs().max().item() if expected.numel() else 0.0
        warmup, rounds = rounds_for(nbytes, dry)
        for impl in IMPLS:
            if impl == "torch":
                buf = x.clone()

                def call():
                    dist.all_reduce(buf, group=group)  # in place, as a user calls it (the sums grow: timing only)
            else:
                fn = ref.all_reduce if impl == "ring" else ref.naive_all_reduce

                def call():
                    return fn(comm, x, "sum")
            error = None
            if impl != "torch":
                got = call()
                error = (got - expected).abs().max().item() / scale if scale else 0.0
                del got
            times, before = [], comm.bytes_sent
            for i in range(warmup + rounds):
                dist.barrier(group=group)
                sync(device)
                start = time.perf_counter()
                call()
                sync(device)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
            per_round = slowest(times, device, group)
            seconds = statistics.median(per_round)
            sent = torch.tensor([(comm.bytes_sent - before) // (warmup + rounds)], device=device)
            everyone = [torch.zeros_like(sent) for _ in range(world)]
            dist.all_gather(everyone, sent, group=group)
            algbw = nbytes / seconds / 1e9
            records.append({
                "impl": impl, "world_size": world, "bytes": nbytes, "size": label(nbytes), "dtype": "float32",
                "seconds": seconds, "seconds_rounds": per_round, "warmup": warmup,
                "algbw_gb_per_s": algbw, "busbw_gb_per_s": algbw * 2 * (world - 1) / world,
                "bytes_sent_by_rank": None if impl == "torch" else [int(t.item()) for t in everyone],
                "model_bytes_sent_per_rank": 2 * (world - 1) * nbytes // world,
                "relative_error_vs_torch": error,
            })
            if impl == "torch":
                del buf
        del x, expected
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return records


def bench_ddp(ch, group, world: int, rank: int, device: torch.device, dry: bool) -> dict:
    from fmspec.reference import collectives as ref
    from fmspec.reference import gpt

    cfg = DRY_GPT if dry else GPT
    d, H, L, B, T = cfg["d"], cfg["n_heads"], cfg["n_layers"], cfg["batch"], cfg["context"]
    gen = torch.Generator(device=device).manual_seed(2000 + rank)
    xs = [torch.randn(B, T, d, generator=gen, device=device) for _ in range(4)]  # (B, T, d): this rank's batches

    def make_model() -> nn.Module:
        torch.manual_seed(0)  # the same initial weights on every rank and for every variant
        return nn.Sequential(*[gpt.Block(d, H) for _ in range(L)]).to(device)

    out = {"config": {**cfg, "bucket_cap_bytes": BUCKET_BYTES, "dtype": "float32",
                      "tf32": device.type == "cuda", "optimizer": "SGD(lr=1e-3)"}, "variants": {}}
    finals = {}
    for variant in ("none", "reference", "torch"):
        model = make_model()
        n_params = sum(p.numel() for p in model.parameters())
        if variant == "reference":
            comm = ch.Communicator(rank, world, group, device, tag=2)
            wrapped = ref.DistributedDataParallel(model, comm, bucket_cap_bytes=BUCKET_BYTES)
        elif variant == "torch":
            wrapped = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None, process_group=group,
                bucket_cap_mb=BUCKET_BYTES / 2**20)
        else:
            wrapped = model
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step(i: int) -> None:
            opt.zero_grad(set_to_none=True)
            loss = wrapped(xs[i % len(xs)]).float().pow(2).mean()
            loss.backward()
            opt.step()

        times = []
        for i in range(cfg["warmup"] + cfg["steps"]):
            dist.barrier(group=group)
            sync(device)
            start = time.perf_counter()
            step(i)
            sync(device)
            if i >= cfg["warmup"]:
                times.append(time.perf_counter() - start)
        per_step = slowest(times, device, group)
        finals[variant] = [p.detach().clone() for p in model.parameters()]
        seconds = statistics.median(per_step)
        out["variants"][variant] = {"seconds": seconds, "seconds_steps": per_step, "parameters": n_params,
                                    "tokens_per_s": world * B * T / seconds}
        del wrapped, model, opt
    out["param_max_abs_diff_reference_vs_torch"] = max(
        (a - b).abs().max().item() for a, b in zip(finals["reference"], finals["torch"]))
    return out


# ---------------------------------------------------------------------------------------- the parent
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shell(cmd: list[str]) -> str | None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 and proc.stdout.strip() else None


def nvlink_report(world: int, dry: bool) -> dict:
    """What the device says of its links: ``nvidia-smi nvlink -s`` (per GPU, each link's GB/s and the sum),
    ``nvidia-smi topo -m``, peer access between the GPUs in use."""
    status = None if dry else shell(["nvidia-smi", "nvlink", "-s"])
    per_gpu: dict[str, list[float]] = {}
    gpu = None
    for line in (status or "").splitlines():
        m = re.match(r"\s*GPU (\d+):", line)
        if m:
            gpu = m.group(1)
            per_gpu.setdefault(gpu, [])
            continue
        m = re.search(r"Link \d+:\s*([\d.]+)\s*GB/s", line)
        if m and gpu is not None:
            per_gpu[gpu].append(float(m.group(1)))
    links = {g: {"links": len(v), "gb_per_s_per_link": v, "gb_per_s_total": sum(v)} for g, v in per_gpu.items() if v}
    peer = None
    if not dry and torch.cuda.is_available():
        peer = {f"{a}->{b}": torch.cuda.can_device_access_peer(a, b)
                for a in range(world) for b in range(world) if a != b}
    topo = None if dry else shell(["nvidia-smi", "topo", "-m"])
    summary = ("not reported" if not links else
               "; ".join(f"GPU {g}: {v['links']} links, {v['gb_per_s_total']:g} GB/s" for g, v in links.items()))
    return {"summary": summary, "per_gpu": links, "nvidia_smi_nvlink_s": status, "nvidia_smi_topo_m": topo,
            "peer_access": peer}


def environment(world: int, dry: bool) -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__, "world_size": world,
           "backend": "gloo" if dry else "nccl", "host": platform.node(), "cpu_count": os.cpu_count(),
           "nccl_nvls_enable": "0", "dry": dry}
    if not dry:
        env["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
        env["devices"] = [torch.cuda.get_device_name(i) for i in range(world)]
        env["driver"] = (shell(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]) or "").strip()
    return env


def markdown(doc: dict) -> str:
    env, world = doc["environment"], doc["environment"]["world_size"]
    rows = {(r["impl"], r["bytes"]): r for r in doc["all_reduce"]}
    sizes = sorted({r["bytes"] for r in doc["all_reduce"]})
    devices = ", ".join(dict.fromkeys(env.get("devices", ["CPU"])))
    lines = [f"# AllReduce and DDP on {world} rank(s): {devices}", "",
             f"torch {env['torch']}, {env['backend']}" + (f" {env['nccl']}" if "nccl" in env else "") +
             f", NCCL_NVLS_ENABLE=0{' (dry run: CPU, gloo, tiny sizes; not a measurement)' if env['dry'] else ''}. "
             f"NVLink: {doc['nvlink']['summary']}.", "",
             "## AllReduce, float32 (busbw = S/t · 2(N-1)/N; median of the slowest rank's time per round)", "",
             "| size | ring ms | torch ms | naive ms | ring busbw GB/s | torch busbw GB/s | naive busbw GB/s "
             "| ring/torch busbw | ring rel. error |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n in sizes:
        ring, tor, naive = rows[("ring", n)], rows[("torch", n)], rows[("naive", n)]
        ratio = ring["busbw_gb_per_s"] / tor["busbw_gb_per_s"] if tor["busbw_gb_per_s"] else None
        lines.append(f"| {label(n)} | {ring['seconds'] * 1e3:.3g} | {tor['seconds'] * 1e3:.3g} | "
                     f"{naive['seconds'] * 1e3:.3g} | {ring['busbw_gb_per_s']:.3g} | {tor['busbw_gb_per_s']:.3g} | "
                     f"{naive['busbw_gb_per_s']:.3g} | {'n/a' if ratio is None else f'{ratio:.3f}'} | "
                     f"{ring['relative_error_vs_torch']:.1e} |")
    big = doc["ring_over_torch_busbw_from_256MB"]
    lines += ["", "Ring busbw over NCCL's at S >= 256 MB: " +
              (", ".join(f"{k}: {v:.3f}" for k, v in big.items()) if big else
               "n/a (no size >= 256 MB, or one rank: busbw is 0)"), ""]
    ddp = doc["ddp"]
    c = ddp["config"]
    lines += [f"## DDP step, {c['n_layers']} gpt.Block of d = {c['d']}, H = {c['n_heads']}, "
              f"B = {c['batch']} x T = {c['context']} a rank, float32 (TF32: {c['tf32']}), {c['optimizer']}, "
              f"buckets of {c['bucket_cap_bytes'] // 2**20} MB; median of {c['steps']} steps after {c['warmup']}", "",
              "| variant | ms / step | tokens/s (all ranks) | over none |", "| --- | --- | --- | --- |"]
    floor = ddp["variants"]["none"]["seconds"]
    for name, v in ddp["variants"].items():
        lines.append(f"| {name} | {v['seconds'] * 1e3:.3g} | {v['tokens_per_s']:.4g} | {v['seconds'] / floor:.3f} |")
    lines += ["", f"Parameters: {ddp['variants']['none']['parameters']:,}; reference vs torch DDP after the steps: "
                  f"max |difference| {ddp['param_max_abs_diff_reference_vs_torch']:.2e}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for collectives_gpu.json and collectives_gpu.md")
    ap.add_argument("--world", type=int, default=None, help="ranks (default: every GPU; --dry: 2)")
    ap.add_argument("--dry", action="store_true", help="CPU, gloo, tiny sizes: a check of the script")
    args = ap.parse_args(argv)
    if args.dry:
        world = args.world or 2
    else:
        if not torch.cuda.is_available():
            ap.error("no CUDA device (use --dry to check the script on a CPU)")
        world = args.world or torch.cuda.device_count()
        if world > torch.cuda.device_count():
            ap.error(f"--world {world}: only {torch.cuda.device_count()} CUDA devices")
    if world < 1:
        ap.error("--world must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULT).unlink(missing_ok=True)
    os.environ["NCCL_NVLS_ENABLE"] = "0"  # inherited by the ranks, before NCCL is loaded there
    started = time.time()
    mp.start_processes(rank_main, args=(world, free_port(), args.dry, str(out)), nprocs=world, join=True,
                       start_method="spawn")
    result = json.loads((out / RESULT).read_text())
    (out / RESULT).unlink()
    rows = {(r["impl"], r["bytes"]): r for r in result["all_reduce"]}
    big = {label(n): rows[("ring", n)]["busbw_gb_per_s"] / rows[("torch", n)]["busbw_gb_per_s"]
           for _, n in rows if n >= BIG and rows[("torch", n)]["busbw_gb_per_s"] > 0}
    doc = {"environment": environment(world, args.dry), "nvlink": nvlink_report(world, args.dry), **result,
           "ring_over_torch_busbw_from_256MB": big, "wall_seconds": time.time() - started}
    (out / "collectives_gpu.json").write_text(json.dumps(doc, indent=1))
    text = markdown(doc)
    (out / "collectives_gpu.md").write_text(text)
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
