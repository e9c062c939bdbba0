"""vit benchmarks: patchify and the patch embedding on one GPU (bf16; run with ``--fmspec-bench``).

Grid: RGB images of 224 × 224 and 384 × 384, batches of 64 and 256, patch P = 16, ViT-B's width E = 768
(N = 196 or 576 patches of K = 3·16·16 = 768 values).

* ``test_patchify_speed``: ``patchify`` (B, C, H, W) -> (B, N, K) against ``F.unfold(x, P, stride=P)
  .transpose(1, 2)`` (what torch offers; its result is a transposed view of the unfolded copy).
* ``test_patch_embed_speed``: ``PatchEmbed`` (B, C, H, W) -> (B, N, E), inference (``fwd``, under no_grad) and
  training (``fwd_bwd``: forward, then the gradients of the weight and bias; images need none), against
  ``nn.Conv2d(C, E, P, stride=P)`` followed by ``flatten(2).transpose(1, 2)`` (the paper's code and timm's),
  ``F.unfold`` followed by a matmul, and timm's ``PatchEmbed`` (skipped with the reason when timm does not
  import), all with the candidate's weights.

Cost model (B images, N patches, K = C·P², bf16 elements of e bytes)::

    patchify          FLOPs = 0,           bytes = e · 2·B·C·H·W              (every pixel read and written once)
    embed, fwd        FLOPs = 2·B·N·K·E,   bytes = e · (B·C·H·W + K·E + B·N·E)
    embed, fwd_bwd    FLOPs = 4·B·N·K·E,   bytes = e · 2·(B·C·H·W + K·E + B·N·E)   (the weight gradient is a
                      second product of the same size; images read again, dY read, dW written)

Each point records the candidate's device time (median, p20, p80), TFLOP/s, GB/s, the fraction of the measured
ceilings (``fmspec/gpu_bench.py``) and the speedup against every peer, measured in the same process. A
candidate is timed only if it passed the vit conformance tests earlier in the run.
``test_bench_points_run_on_cpu`` runs every point's code on CPU at a tiny size, with a stand-in timer, and
checks that every peer computes what the candidate computes.
"""

from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fmspec import benchutil as bu
from fmspec import gpu_bench as gb
from fmspec.suites import asserts as ah

pytestmark = [pytest.mark.component("vit"), pytest.mark.bench]
PF, PE = "vit.patchify", "vit.PatchEmbed"
SIZES = [224, 384]
BATCHES = [64, 256]
PATCH, CHANNELS, EMBED = 16, 3, 768
_BASELINES: dict[tuple, gb.Timing | None] = {}  # (test, name, size, batch, mode, device, dtype) -> timing


def timm_missing() -> str | None:
    """Why timm's PatchEmbed is not measured, or None when timm imports."""
    try:
        import timm.layers  # noqa: F401
    except ImportError as exc:  # timm needs torchvision, built for one torch
        return f"timm not importable ({exc})"
    return None


def images(size: int, batch: int, device: str, dtype: torch.dtype, channels: int = CHANNELS) -> torch.Tensor:
    gen = torch.Generator(device).manual_seed(size + batch)
    return torch.randn((batch, channels, size, size), generator=gen, device=device, dtype=dtype)


# ------------------------------------------------------------------------------------------ the peers
def patchify_fns(candidate, x: torch.Tensor, patch: int) -> dict:
    """name -> a call returning (B, N, C·P·P): the candidate's patchify and torch's unfold."""
    return {"candidate": lambda: candidate.vit.patchify(x, patch),
            "unfold": lambda: F.unfold(x, patch, stride=patch).transpose(1, 2)}  # (B, K, N) -> (B, N, K)


class UnfoldEmbed(nn.Module):
    """The patch embedding as F.unfold and one matmul, with a Conv2d's weight layout (E, C, P, P)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.proj = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.proj.kernel_size[0]
        patches = F.unfold(x, p, stride=p).transpose(1, 2)  # (B, C·P·P, N) -> (B, N, C·P·P)
        return patches @ self.proj.weight.reshape(self.proj.out_channels, -1).T + self.proj.bias  # (B, N, E)


class ConvEmbed(nn.Module):
    """nn.Conv2d with kernel = stride = P, then (B, E, gh, gw) -> (B, N, E): the paper's code and timm's."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.proj = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, E, gh, gw) -> (B, E, N) -> (B, N, E)


def _embed_call(module: nn.Module, x: torch.Tensor, g: torch.Tensor, mode: str) -> Callable[[], object]:
    if mode == "fwd":
        def run():
            with torch.no_grad():
                return module(x)
        return run

    def step():
        y = module(x)
        return (y, *torch.autograd.grad(y, [module.proj.weight, module.proj.bias], g))
    return step


def embed_fns(candidate, x: torch.Tensor, patch: int, embed_dim: int, mode: str) -> dict:
    """name -> a call returning (B, N, E) (and in ``fwd_bwd`` the weight and bias gradients): the candidate's
    PatchEmbed and its peers, all with the candidate's weights (None: not available)."""
    B, C, H, W = x.shape
    ours = candidate.vit.PatchEmbed((H, W), patch, C, embed_dim).to(device=x.device, dtype=x.dtype)
    weight, bias = ours.proj.weight.detach(), ours.proj.bias.detach()  # (E, C, P, P), (E,)

    def conv() -> nn.Conv2d:
        c = nn.Conv2d(C, embed_dim, patch, stride=patch, device=x.device, dtype=x.dtype)
        with torch.no_grad():
            c.weight.copy_(weight)
            c.bias.copy_(bias)
        return c

    peers = {"conv2d": ConvEmbed(conv()), "unfold_matmul": UnfoldEmbed(conv())}
    if timm_missing() is None:
        import timm.layers

        t = timm.layers.PatchEmbed(img_size=(H, W), patch_size=patch, in_chans=C, embed_dim=embed_dim)
        t.proj = conv()
        peers["timm"] = t
    gen = torch.Generator(x.device.type).manual_seed(7)
    g = torch.randn((B, (H // patch) * (W // patch), embed_dim), generator=gen, device=x.device, dtype=x.dtype)
    fns = {"candidate": _embed_call(ours, x, g, mode)}
    fns.update({name: _embed_call(m, x, g, mode) for name, m in peers.items()})
    return {**fns, "timm": fns.get("timm")}  # None where timm does not import


# ------------------------------------------------------------------------------------------ the points
def cost(kind: str, x_shape: tuple, patch: int, embed_dim: int, mode: str, e: int) -> gb.Cost:
    B, C, H, W = x_shape
    pixels, n, k = B * C * H * W, (H // patch) * (W // patch), C * patch * patch
    if kind == "patchify":
        return gb.Cost(0.0, e * 2 * pixels, "0; bytes e·2·B·C·H·W")
    moved = e * (pixels + k * embed_dim + B * n * embed_dim)
    if mode == "fwd":
        return gb.Cost(2 * B * n * k * embed_dim, moved, "2·B·N·K·E; bytes e·(B·C·H·W + K·E + B·N·E)")
    return gb.Cost(4 * B * n * k * embed_dim, 2 * moved, "4·B·N·K·E; bytes 2·e·(B·C·H·W + K·E + B·N·E)")


def _timed(fn: Callable | None, timer) -> gb.Timing | None:
    if fn is None:
        return None
    fn()  # lazy initialisation stays out of the timing
    return timer(fn)


def point(candidate, kind: str, size: int, batch: int, mode: str, device: str, dtype: torch.dtype,
          patch: int = PATCH, embed_dim: int = EMBED, channels: int = CHANNELS, timer=gb.time_ms,
          ceiling: dict | None = None) -> tuple[dict, gb.Timing]:
    """Every number of one point (kind "patchify" or "embed"): the candidate timed, each peer once per
    process and shape (shared by candidates), the values ready for ``bu.record``."""
    x = images(size, batch, device, dtype, channels)
    fns = patchify_fns(candidate, x, patch) if kind == "patchify" else embed_fns(candidate, x, patch, embed_dim, mode)
    timing = _timed(fns.pop("candidate"), timer)
    baselines = {}
    for name, fn in fns.items():
        key = (kind, name, size, batch, mode, patch, embed_dim, channels, device, dtype)
        if key not in _BASELINES:
            _BASELINES[key] = gb.numbers(_timed(fn, timer))
        baselines[name] = _BASELINES[key]
    ceiling = ceiling or gb.ceilings(device, dtype)
    values = gb.summary(timing, cost(kind, tuple(x.shape), patch, embed_dim, mode, x.element_size()), ceiling,
                        baselines)
    values.update({"kind": kind, "mode": mode, "image": size, "batch": batch, "patch": patch, "embed_dim": embed_dim,
                   "patches": (size // patch) ** 2, "dtype": str(dtype).removeprefix("torch."),
                   "images_per_s": batch / (timing.median_ms * 1e-3)})
    if kind == "embed":
        values["timm"] = timm_missing() or "measured"
    return values, timing


def _gpu_test(candidate, kind, size, batch, mode, device, dtype, benchmark, fmspec_metrics, request) -> None:
    conformance = bu.require_conformance(request, "vit", candidate.name)
    values, timing = point(candidate, kind, size, batch, mode, device, dtype)
    values["conformance"] = conformance
    bu.record(benchmark, fmspec_metrics, values)
    gb.pedantic_device_time(benchmark, timing)


@pytest.mark.gpu
@pytest.mark.needs(PF)
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"B{b}")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}px")
def test_patchify_speed(candidate, size, batch, device, dtype, benchmark, fmspec_metrics, request):
    """patchify against F.unfold: a copy, so GB/s against the copy ceiling."""
    _gpu_test(candidate, "patchify", size, batch, "fwd", device, dtype, benchmark, fmspec_metrics, request)


@pytest.mark.gpu
@pytest.mark.needs(PE)
@pytest.mark.parametrize("device", ["cuda"])
@pytest.mark.parametrize("dtype", [pytest.param(torch.bfloat16, id="bfloat16")])
@pytest.mark.parametrize("mode", ["fwd", "fwd_bwd"])
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"B{b}")
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s}px")
def test_patch_embed_speed(candidate, size, batch, mode, device, dtype, benchmark, fmspec_metrics, request):
    """PatchEmbed against Conv2d (stride = patch), unfold + matmul and timm's PatchEmbed."""
    _gpu_test(candidate, "embed", size, batch, mode, device, dtype, benchmark, fmspec_metrics, request)


# ------------------------------------------------------------------------------------- the CPU dry run
@pytest.mark.needs(PF, PE)
def test_bench_points_run_on_cpu(candidate, request):
    """Every point's code on CPU at a tiny size (float64, stand-in timer): the numbers exist, and every peer
    computes what the candidate computes (patches, tokens, weight and bias gradients), so the GPU run compares
    equal work."""
    bu.require_in_process(candidate)
    bu.require_conformance(request, "vit", candidate.name)
    torch.set_num_threads(1)  # tiny tensors: threads only contend (the plugin restores the setting after the test)
    size, batch, patch, embed_dim, channels, dtype = 8, 2, 4, 6, 3, torch.float64
    for kind, mode in (("patchify", "fwd"), ("embed", "fwd"), ("embed", "fwd_bwd")):
        values, _ = point(candidate, kind, size, batch, mode, "cpu", dtype, patch, embed_dim, channels,
                          timer=gb.dry_time, ceiling=gb.DRY_CEILING)
        assert values["median_ms"] == 1.0 and values["gbps"] > 0, values
        x = images(size, batch, "cpu", dtype, channels)
        fns = (patchify_fns(candidate, x, patch) if kind == "patchify"
               else embed_fns(candidate, x, patch, embed_dim, mode))
        ours = fns.pop("candidate")()
        ours = ours if isinstance(ours, tuple) else (ours,)
        for name, fn in fns.items():
            if fn is None:
                continue  # timm not installed: nothing to compare
            theirs = fn()
            theirs = theirs if isinstance(theirs, tuple) else (theirs,)
            for i, (a, b) in enumerate(zip(ours, theirs)):
                ah.assert_close(a.detach(), b.detach(), dtype=dtype, n=channels * patch * patch * batch,
                                name=f"{kind} {mode} output {i}",
                                where=f"candidate vs {name}, {tuple(x.shape)}, P={patch}")
