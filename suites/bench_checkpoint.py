"""checkpoint benchmarks: the memory/time trade-off of rematerialization on one GPU (bf16; ``--fmspec-bench``).

The network: a stack of L in {4, 8, 16, 32} of the lecture's transformer blocks (``reference/tiny_gpt.Block``:
masked multi-head attention with its T × T matrices stored, the d → 4d → d sigmoid MLP and W_proj), d = 768,
H = 12, T = 1024, B = 8, no dropout. One training step: the forward pass, then the gradients of the input and of
every weight (``torch.autograd.grad``) against a fixed output gradient.

Methods, each on the same blocks and input:

* the candidate's ``checkpoint_sequential`` with round(√L) segments (``plan``'s split: memory ~2√L blocks,
  every block's forward twice) and with L segments (one block each);
* the candidate's ``checkpoint_selective`` on every block with the lecture's option 2 (recompute the T × T
  attention matrices only, ``recompute = lambda t: t.shape[-2:] == (T, T)``);
* peers: ``none`` (the plain chain), ``torch_per_block`` (``torch.utils.checkpoint.checkpoint``, non-reentrant,
  on every block), ``torch_sequential`` (``torch.utils.checkpoint.checkpoint_sequential``, non-reentrant,
  round(√L) segments; it keeps the last segment's graph).

Recorded per method: the device time of the step (median, p20, p80), ``held_bytes`` (what stays allocated after
the forward pass for the backward pass, less the output: ``suites/memory.held_tensors``), ``peak_bytes`` (the
allocator's peak over the step, beyond what was allocated before it: parameters and input excluded, the
returned gradients included), and for every peer its time, held and peak bytes and the ratios. Plot
``peak_bytes`` against ``median_ms`` per L for the trade-off.

Cost model (useful work: a recomputation counts as time, not as FLOPs), per block, bf16 elements of e bytes::

    forward FLOPs  F = 24·B·T·d² + 4·B·T²·d     (Q, K, V, W_proj: 4 · 2·B·T·d²; W_1, W_2: 2 · 8·B·T·d²;
                                                Q Kᵀ and P V: 2 · 2·B·T²·d, the full T × T, as the block computes)
    step FLOPs     = 3 · L · F                  (backward = 2 × forward)
    bytes          = e · L · (3 · 12·d² + 2 · (10·B·T·d + H·B·T²))   weights read twice and their gradients
                                                written; what the plain graph saves written once, read once

A candidate is timed only if it passed the checkpoint conformance tests earlier in the run.
``test_bench_points_run_on_cpu`` runs every method's code on CPU at a tiny size (stand-in timer and peak) and
checks that every method gives the plain chain's output and gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
import torch.utils.checkpoint as tc

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb
from fmspec.reference import tiny_gpt  # the lecture's transformer block: the network timed, never an oracle
from fmspec.suites import asserts as ah
from fmspec.suites import memory as mem

pytestmark = [pytest.mark.component("checkpoint"), pytest.mark.bench]
SEQUENTIAL, SELECTIVE = "checkpoint.checkpoint_sequential", "checkpoint.checkpoint_selective"
DEPTHS = [4, 8, 16, 32]
REP_MS = 400  # a depth-32 step takes tens of ms: more than gb's default 100 ms, for a spread of several runs
_CACHE: dict[tuple, object] = {}  # the blocks per (shape, device, dtype); the peers' measurements


@dataclass(frozen=True)
class Shape:
    batch: int
    seq: int  # T; differs from d and 4·d, so that only the attention matrices end in (T, T)
    d: int
    heads: int


GPU_SHAPE = Shape(batch=8, seq=1024, d=768, heads=12)
CPU_SHAPE = Shape(batch=2, seq=6, d=4, heads=2)


def attention_matrices(T: int) -> Callable[[torch.Tensor], bool]:
    """The lecture's option 2: recompute exactly the saved tensors ending in (T, T)."""
    return lambda t: t.dim() >= 2 and tuple(t.shape[-2:]) == (T, T)


# ------------------------------------------------------------------------------------------ the methods
def plain(blocks, x, T):
    for block in blocks:
        x = block(x)
    return x


def torch_per_block(blocks, x, T):
    for block in blocks:
        x = tc.checkpoint(block, x, use_reentrant=False)
    return x


def torch_sequential(blocks, x, T):
    return tc.checkpoint_sequential(blocks, round(math.sqrt(len(blocks))), x, use_reentrant=False)


PEERS = {"none": plain, "torch_per_block": torch_per_block, "torch_sequential": torch_sequential}


def candidate_method(candidate, method: str) -> Callable:
    cp = candidate.checkpoint
    if method == "sequential_sqrt":
        return lambda blocks, x, T: cp.checkpoint_sequential(blocks, x, round(math.sqrt(len(blocks))))
    if method == "sequential_per_block":
        return lambda blocks, x, T: cp.checkpoint_sequential(blocks, x, len(blocks))
    if method == "option2":
        def option2(blocks, x, T):
            for block in blocks:
                x = cp.checkpoint_selective(block, x, attention_matrices(T))
            return x
        return option2
    raise ValueError(f"unknown method {method!r}")


# ------------------------------------------------------------------------------------------- the network
def stack(depth: int, shape: Shape, device: str, dtype: torch.dtype) -> list[tiny_gpt.Block]:
    """The first ``depth`` of one stack of blocks built per process (the deepest grid point's), on ``device``."""
    key = ("blocks", shape, device, dtype)
    if key not in _CACHE:
        cfg = tiny_gpt.Config(d=shape.d, n_heads=shape.heads, dtype=dtype)
        with torch.random.fork_rng(devices=[device] if device == "cuda" else []), torch.device(device):
            torch.manual_seed(0)
            _CACHE[key] = [tiny_gpt.Block(cfg) for _ in range(max(DEPTHS))]  # drawn on the device: fast
    return _CACHE[key][:depth]


def inputs(shape: Shape, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator(device).manual_seed(1)
    dims = (shape.batch, shape.seq, shape.d)
    x = torch.randn(dims, generator=gen, device=device, dtype=dtype).requires_grad_()
    return x, torch.randn(dims, generator=gen, device=device, dtype=dtype)


def step_fn(forward: Callable, blocks, x, g, T: int) -> Callable[[], tuple]:
    """One training step: the output, then the gradients of x and of every weight."""
    params = [p for block in blocks for p in block.parameters()]

    def step():
        y = forward(blocks, x, T)
        return (y, *torch.autograd.grad(y, [x, *params], g))
    return step


def measure(forward: Callable, blocks, x, g, T: int, device: str, timer, peak) -> dict:
    """Time, bytes held after the forward pass, and the allocator's peak over one step, of one method."""
    with mem.held_tensors() as held:
        y = forward(blocks, x, T)
    held_bytes = held.elements(exclude=[y]) * x.element_size()
    del y, held
    step = step_fn(forward, blocks, x, g, T)
    step()  # lazy initialisation stays out of the timing
    return {"timing": timer(step, rep_ms=REP_MS),
            "held_bytes": held_bytes, "peak_bytes": peak(step, device)}


def cost(depth: int, s: Shape, element_size: int) -> gb.Cost:
    fwd = 24 * s.batch * s.seq * s.d ** 2 + 4 * s.batch * s.seq ** 2 * s.d
    saved = 10 * s.batch * s.seq * s.d + s.heads * s.batch * s.seq ** 2
    return gb.Cost(3 * depth * fwd, element_size * depth * (36 * s.d ** 2 + 2 * saved),
                   "3·L·(24·B·T·d² + 4·B·T²·d); bytes e·L·(36·d² + 2·(10·B·T·d + H·B·T²))")


def point(candidate, method: str, depth: int, device: str, dtype: torch.dtype, shape: Shape = GPU_SHAPE,
          timer=gb.time_ms, peak=gb.allocator_peak, ceiling: dict | None = None) -> tuple[dict, gb.Timing]:
    """Every number of one (method, depth): the candidate measured, each peer once per process and depth."""
    blocks = stack(depth, shape, device, dtype)
    x, g = inputs(shape, device, dtype)
    ours = measure(candidate_method(candidate, method), blocks, x, g, shape.seq, device, timer, peak)
    theirs = {}
    for name, forward in PEERS.items():
        key = ("peer", name, depth, shape, device, dtype)
        if key not in _CACHE:
            m = measure(forward, blocks, x, g, shape.seq, device, timer, peak)
            _CACHE[key] = {**m, "timing": gb.numbers(m["timing"])}
        theirs[name] = _CACHE[key]
    ceiling = ceiling or gb.ceilings(device, dtype)
    values = gb.summary(ours["timing"], cost(depth, shape, x.element_size()), ceiling,
                        {name: m["timing"] for name, m in theirs.items()})
    values.update({"method": method, "depth": depth, "B": shape.batch, "T": shape.seq, "d": shape.d,
                   "H": shape.heads, "dtype": str(dtype).removeprefix("torch."),
                   "held_bytes": ours["held_bytes"], "peak_bytes": ours["peak_bytes"]})
    for name, m in theirs.items():
        values[f"{name}_held_bytes"] = m["held_bytes"]
        values[f"{name}_peak_bytes"] = m["peak_bytes"]
    none = theirs["none"]
    values["peak_fraction_of_none"] = ours["peak_bytes"] / none["peak_bytes"] if none["peak_bytes"] else None
    values["held_fraction_of_none"] = ours["held_bytes"] / none["held_bytes"] if none["held_bytes"] else None
    return values, ours["timing"]


def _gpu_test(candidate, method, depth, device, dtype, benchmark, fmspec_metrics, request) -> None:
    conformance = bu.require_conformance(request, "checkpoint", candidate.name)
    values, timing = point(candidate, method, depth, device, dtype)
    values["conformance"] = conformance
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)


@pytest.mark.gpu
@pytest.mark.needs(SEQUENTIAL)
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("depth", DEPTHS, ids=lambda n: f"L{n}")
@pytest.mark.parametrize("method", ["sequential_sqrt", "sequential_per_block"])
def test_sequential_speed_and_memory(candidate, method, depth, device, dtype, benchmark, fmspec_metrics, request):
    """checkpoint_sequential with √L and with L segments: time and memory against no checkpointing and torch's."""
    _gpu_test(candidate, method, depth, device, dtype, benchmark, fmspec_metrics, request)


@pytest.mark.gpu
@pytest.mark.needs(SELECTIVE)
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("depth", DEPTHS, ids=lambda n: f"L{n}")
def test_option2_speed_and_memory(candidate, depth, device, dtype, benchmark, fmspec_metrics, request):
    """checkpoint_selective recomputing the attention matrices of every block (option 2): time and memory."""
    _gpu_test(candidate, "option2", depth, device, dtype, benchmark, fmspec_metrics, request)


# ------------------------------------------------------------------------------------- the CPU dry run
@pytest.mark.needs(SEQUENTIAL, SELECTIVE)
def test_bench_points_run_on_cpu(candidate, request):
    """Every method's code on CPU at a tiny size (float64, stand-in timer and peak): the numbers exist, the
    checkpointed methods hold less than the plain chain, and every method gives the plain chain's output and
    gradients, so the GPU run compares equal work."""
    bu.require_in_process(candidate)
    bu.require_conformance(request, "checkpoint", candidate.name)
    torch.set_num_threads(1)  # tiny tensors: threads only contend (the plugin restores the setting after the test)
    s, dtype, depth = CPU_SHAPE, torch.float64, 4
    for method in ("sequential_sqrt", "sequential_per_block", "option2"):
        values, _ = point(candidate, method, depth, "cpu", dtype, s, timer=gb.dry_time, peak=gb.dry_peak,
                          ceiling=gb.DRY_CEILING)
        assert values["median_ms"] == 1.0 and values["tflops"] > 0, values
        assert 0 < values["held_bytes"] < values["none_held_bytes"], (method, values)
    blocks = stack(depth, s, "cpu", dtype)
    x, g = inputs(s, "cpu", dtype)
    expected = step_fn(plain, blocks, x, g, s.seq)()
    methods = {m: candidate_method(candidate, m) for m in ("sequential_sqrt", "sequential_per_block", "option2")}
    for name, forward in {**methods, "torch_per_block": torch_per_block, "torch_sequential": torch_sequential}.items():
        for i, (got, want) in enumerate(zip(step_fn(forward, blocks, x, g, s.seq)(), expected)):
            ah.assert_close(got.detach(), want.detach(), dtype=dtype, n=depth * 4 * s.d, name=f"step output {i}",
                            where=f"{name} vs the plain chain, {depth} blocks, {s}")
