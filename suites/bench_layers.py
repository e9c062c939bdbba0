"""layers benchmarks: each hand-written backward pass against torch.autograd on one GPU (bf16; ``--fmspec-bench``).

One point per layer of the contract, at a size where a GPU is busy (B sequences of T tokens, width d)::

    softmax        y (B, H, T, T) = (4, 16, 1024, 1024): attention probabilities
    layernorm      x (B, T, d) = (8, 2048, 4096), weight and bias (d,)
    embedding      ids (8, 2048) into a (50304, 1024) table (GPT-2's vocabulary, padded to a multiple of 64)
    cross_entropy  logits (4, 1024, 50304), mean over the 4096 rows
    attention      x (4, 1024, 1024), H = 16 heads, causal, four (d, d) weights
    lora           x (8, 2048, 4096), W (4096, 4096) frozen, r = 16, alpha = 32

The candidate's ``*_backward`` gets the layer's inputs and dL/dY and returns the gradients. Its peers, on the
same inputs: ``autograd_backward``, torch.autograd's backward alone through the same layer written with torch
(``F.softmax``, ``F.layer_norm``, ``F.embedding``, ``F.cross_entropy``, the dense attention of
``suites/oracles.py``, the LoRA matmuls), its graph built once beforehand; ``autograd_forward_backward``, the
forward pass and the backward pass (a manual backward that recomputes the forward, as the attention's does,
is closest to this one); for attention also ``sdpa_forward_backward``, the layer with
``F.scaled_dot_product_attention`` (what a user would write; flash kernels, no T × T matrix stored).

Cost model (the backward pass only; e bytes an element; n the elements of the layer's input)::

    softmax        FLOPs 4·n                       bytes e·3·n (y, dY read; dX written)
    layernorm      FLOPs 10·n                      bytes e·3·n (x, dY read; dX written; (d,) vectors left out)
    embedding      FLOPs B·T·d (the additions)     bytes e·(B·T·d + V·d) (dY read, the table's gradient written)
    cross_entropy  FLOPs 5·n                       bytes e·2·n (logits read, their gradient written)
    attention      FLOPs 16·B·T·d² + 8·B·T²·d     (dW_o, dO, dQ, dK, dV projections and dX: 8 · 2·B·T·d²; dV,
                                                   dP, dQ, dK through the full T × T: 4 · 2·B·T²·d)
                   bytes e·(3·B·T·d + 8·d²)       (x, dY read, dX written; 4 weights read, 4 gradients written)
    lora           FLOPs 2·N·d_out·d_in + 10·N·r·d (N = B·T: dX through W, and the rank-r products)
                   bytes e·(3·N·d + d² + 4·r·d)

Each point records the candidate's device time (median, p20, p80), TFLOP/s, GB/s, the fraction of the measured
ceilings (``fmspec/gpu_bench.py``) and the speedup against each peer, measured in the same process. A candidate
is timed only if it passed the layers conformance tests earlier in the run. ``test_bench_points_run_on_cpu``
runs every point's code on CPU at a tiny size, with a stand-in timer, and checks that the candidate's gradients
equal every peer's (the comparison is of equal work).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb
from fmspec.suites import asserts as ah
from fmspec.suites import oracles as orc

pytestmark = [pytest.mark.component("layers"), pytest.mark.bench]
_BASELINES: dict[tuple, gb.Timing | None] = {}  # (layer, name, sizes, device, dtype) -> timing


@dataclass
class Problem:
    """One layer at one size: the candidate's call, the same layer's torch forward, and the cost."""

    args: tuple  # the candidate's ``*_backward`` arguments
    forward: Callable  # forward(*leaves) -> the layer's output (a scalar for cross-entropy)
    leaves: list[torch.Tensor]  # the inputs whose gradients the candidate returns, in its order
    grad_y: torch.Tensor | None  # dL/dY (None: the output is the scalar loss)
    cost: gb.Cost
    peers: dict[str, Callable] | None = None  # further forward functions of the same layer (sdpa)


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().requires_grad_()


# --------------------------------------------------------------------------------------- the layers
def softmax(s: dict, device: str, dtype: torch.dtype) -> Problem:
    shape = (s["B"], s["H"], s["T"], s["T"])
    x = _leaf(gb.randn(shape, 1, device, dtype))
    y, g = torch.softmax(x.detach(), -1), gb.randn(shape, 2, device, dtype)
    n, e = x.numel(), x.element_size()
    return Problem((y, g), lambda x: torch.softmax(x, -1), [x], g, gb.Cost(4 * n, e * 3 * n, "4·n; bytes e·3·n"))


def layernorm(s: dict, device: str, dtype: torch.dtype) -> Problem:
    d = s["d"]
    x = _leaf(gb.randn((s["B"], s["T"], d), 1, device, dtype))
    w, b = _leaf(1 + gb.randn((d,), 2, device, dtype, 0.1)), _leaf(gb.randn((d,), 3, device, dtype, 0.1))
    g = gb.randn(tuple(x.shape), 4, device, dtype)
    n, e = x.numel(), x.element_size()
    return Problem((x.detach(), w.detach(), b.detach(), g), lambda x, w, b: F.layer_norm(x, (d,), w, b, 1e-5),
                   [x, w, b], g, gb.Cost(10 * n, e * 3 * n, "10·n; bytes e·3·n"))


def embedding(s: dict, device: str, dtype: torch.dtype) -> Problem:
    V, d = s["V"], s["d"]
    gen = torch.Generator(device).manual_seed(1)
    ids = torch.randint(0, V, (s["B"], s["T"]), generator=gen, device=device)
    table = _leaf(gb.randn((V, d), 2, device, dtype))
    g = gb.randn((s["B"], s["T"], d), 3, device, dtype)
    e = g.element_size()
    return Problem((ids, V, g), lambda W: F.embedding(ids, W), [table], g,
                   gb.Cost(g.numel(), e * (g.numel() + V * d), "B·T·d; bytes e·(B·T·d + V·d)"))


def cross_entropy(s: dict, device: str, dtype: torch.dtype) -> Problem:
    V = s["V"]
    logits = _leaf(gb.randn((s["B"], s["T"], V), 1, device, dtype))
    gen = torch.Generator(device).manual_seed(2)
    targets = torch.randint(0, V, (s["B"], s["T"]), generator=gen, device=device)
    n, e = logits.numel(), logits.element_size()
    return Problem((logits.detach(), targets), lambda z: F.cross_entropy(z.reshape(-1, V), targets.reshape(-1)),
                   [logits], None, gb.Cost(5 * n, e * 2 * n, "5·n; bytes e·2·n"))


def _mhsa(attend: Callable, n_heads: int) -> Callable:
    """Multi-head self-attention y = merge(attend(Q, K, V)) W_oᵀ, Q = x W_qᵀ split into heads (causal)."""
    def forward(x, w_q, w_k, w_v, w_o):
        b, t, d = x.shape
        q, k, v = ((x @ w.T).reshape(b, t, n_heads, d // n_heads).transpose(1, 2)  # (B, T, d) -> (B, H, T, Dh)
                   for w in (w_q, w_k, w_v))
        return attend(q, k, v).transpose(1, 2).reshape(b, t, d) @ w_o.T  # (B, H, T, Dh) -> (B, T, d)
    return forward


def attention(s: dict, device: str, dtype: torch.dtype) -> Problem:
    B, T, d, H = s["B"], s["T"], s["d"], s["H"]
    x = _leaf(gb.randn((B, T, d), 1, device, dtype))
    ws = [_leaf(gb.randn((d, d), 2 + i, device, dtype, 1 / math.sqrt(d))) for i in range(4)]
    g = gb.randn((B, T, d), 6, device, dtype)
    e = x.element_size()
    cost = gb.Cost(16 * B * T * d * d + 8 * B * T * T * d, e * (3 * B * T * d + 8 * d * d),
                   "16·B·T·d² + 8·B·T²·d; bytes e·(3·B·T·d + 8·d²)")
    dense = _mhsa(lambda q, k, v: orc.dense_attention(q, k, v, causal=True), H)
    sdpa = _mhsa(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), H)
    return Problem((x.detach(), *(w.detach() for w in ws), H, g), dense, [x, *ws], g, cost,
                   peers={"sdpa_forward_backward": sdpa})


def lora(s: dict, device: str, dtype: torch.dtype) -> Problem:
    N, d, r, alpha = s["B"] * s["T"], s["d"], s["r"], s["alpha"]
    x = _leaf(gb.randn((s["B"], s["T"], d), 1, device, dtype))
    W = gb.randn((d, d), 2, device, dtype, 1 / math.sqrt(d))
    A = _leaf(gb.randn((r, d), 3, device, dtype, 1 / math.sqrt(d)))  # (r, in)
    B = _leaf(gb.randn((d, r), 4, device, dtype, 1 / math.sqrt(r)))  # (out, r)
    g = gb.randn((s["B"], s["T"], d), 5, device, dtype)
    e = x.element_size()
    cost = gb.Cost(2 * N * d * d + 10 * N * r * d, e * (3 * N * d + d * d + 4 * r * d),
                   "2·N·d² + 10·N·r·d; bytes e·(3·N·d + d² + 4·r·d)")
    return Problem((x.detach(), W, A.detach(), B.detach(), alpha, g),
                   lambda x, A, B: x @ W.T + (alpha / r) * ((x @ A.T) @ B.T), [x, A, B], g, cost)


LAYERS = {  # name -> (the problem builder, the GPU sizes, the CPU dry-run sizes)
    "softmax": (softmax, dict(B=4, H=16, T=1024), dict(B=2, H=2, T=5)),
    "layernorm": (layernorm, dict(B=8, T=2048, d=4096), dict(B=2, T=3, d=6)),
    "embedding": (embedding, dict(B=8, T=2048, V=50304, d=1024), dict(B=2, T=5, V=7, d=4)),
    "cross_entropy": (cross_entropy, dict(B=4, T=1024, V=50304), dict(B=2, T=3, V=7)),
    "attention": (attention, dict(B=4, T=1024, d=1024, H=16), dict(B=2, T=5, d=6, H=2)),
    "lora": (lora, dict(B=8, T=2048, d=4096, r=16, alpha=32.0), dict(B=2, T=3, d=6, r=2, alpha=4.0)),
}


# ------------------------------------------------------------------------------------------ the points
def fns(candidate, layer: str, p: Problem) -> dict[str, Callable[[], tuple]]:
    """name -> a call returning the gradients of ``p.leaves``: the candidate's backward and its peers."""
    manual = getattr(candidate.layers, f"{layer}_backward")

    def ours():
        out = manual(*p.args)
        return tuple(out) if isinstance(out, (tuple, list)) else (out,)

    grad_y = p.grad_y  # None: the output is the scalar loss
    y = p.forward(*p.leaves)  # the graph the backward-only peer runs through again and again

    def backward_only():
        return torch.autograd.grad(y, p.leaves, grad_y, retain_graph=True)

    def forward_backward(forward: Callable) -> Callable[[], tuple]:
        return lambda: torch.autograd.grad(forward(*p.leaves), p.leaves, grad_y)

    out = {"candidate": ours, "autograd_backward": backward_only,
           "autograd_forward_backward": forward_backward(p.forward)}
    out.update({name: forward_backward(f) for name, f in (p.peers or {}).items()})
    return out


def point(candidate, layer: str, device: str, dtype: torch.dtype, sizes: dict | None = None, timer=gb.time_ms,
          ceiling: dict | None = None) -> tuple[dict, gb.Timing]:
    """Every number of one layer: the candidate's backward timed, each peer once per process (shared by
    candidates), the values ready for ``bu.record``."""
    build, gpu_sizes, _ = LAYERS[layer]
    sizes = sizes or gpu_sizes
    p = build(sizes, device, dtype)
    calls = fns(candidate, layer, p)
    ours = calls.pop("candidate")
    ours()  # lazy initialisation stays out of the timing
    timing = timer(ours)
    baselines = {}
    for name, fn in calls.items():
        key = (layer, name, tuple(sorted(sizes.items())), device, dtype)
        if key not in _BASELINES:
            fn()
            _BASELINES[key] = gb.numbers(timer(fn))
        baselines[name] = _BASELINES[key]
    cost = p.cost
    del calls, p  # the backward-only peer's graph
    values = gb.summary(timing, cost, ceiling or gb.ceilings(device, dtype), baselines)
    values.update({"layer": layer, **sizes, "dtype": str(dtype).removeprefix("torch.")})
    return values, timing


@pytest.mark.gpu
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("layer", [pytest.param(name, marks=pytest.mark.needs(f"layers.{name}_backward"), id=name)
                                   for name in LAYERS])
def test_backward_speed(candidate, layer, device, dtype, benchmark, fmspec_metrics, request):
    """The candidate's hand-written backward against torch.autograd through the same layer."""
    conformance = bu.require_conformance(request, "layers", candidate.name)
    values, timing = point(candidate, layer, device, dtype)
    values["conformance"] = conformance
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)


# ------------------------------------------------------------------------------------- the CPU dry run
@pytest.mark.parametrize("layer", [pytest.param(name, marks=pytest.mark.needs(f"layers.{name}_backward"), id=name)
                                   for name in LAYERS])
def test_bench_points_run_on_cpu(candidate, layer, request):
    """The layer's point on CPU at a tiny size (float64, stand-in timer): the numbers exist, and the candidate's
    gradients equal every peer's, so the GPU run compares equal work."""
    bu.require_in_process(candidate)
    bu.require_conformance(request, "layers", candidate.name)
    torch.set_num_threads(1)  # tiny tensors: threads only contend (the plugin restores the setting after the test)
    build, _, sizes = LAYERS[layer]
    dtype = torch.float64
    values, _ = point(candidate, layer, "cpu", dtype, sizes, timer=gb.dry_time, ceiling=gb.DRY_CEILING)
    assert values["median_ms"] == 1.0 and values["tflops"] > 0 and values["gbps"] > 0, values
    calls = fns(candidate, layer, build(sizes, "cpu", dtype))
    ours = calls.pop("candidate")()
    n = math.prod(int(v) for v in sizes.values())  # a bound on any reduction length of the layer
    for name, fn in calls.items():
        theirs = fn()
        assert len(ours) == len(theirs), f"{len(ours)} gradients, {name} gives {len(theirs)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            ah.assert_close(a.detach(), b.detach(), dtype=dtype, n=n, name=f"gradient {i}",
                            where=f"{layer}_backward vs {name}, sizes {sizes}")
