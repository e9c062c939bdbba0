"""The GPU benchmark harness shared by every bench module (imported ``as gb``).

What every GPU benchmark does, in one place:

* **time with device events**: :func:`time_ms` wraps ``triton.testing.do_bench``, which warms up, flushes
  the L2 cache before every repetition (it writes a buffer larger than L2), times each repetition with
  CUDA events, and here returns the median with the 20th and 80th percentiles (the spread);
* **state the cost model**: each bench builds a :class:`Cost` (FLOPs and the fewest bytes it must move)
  and says in its docstring where the numbers come from;
* **measure the ceilings once per session**: :func:`ceilings` times a large bf16/fp16 matrix product and a
  large device-to-device copy (bytes read plus bytes written), so "fraction of ceiling" is against what
  this device does today, not a datasheet;
* **record, not print**, and time only what passed conformance in the same run: ``benchutil.py``
  (shared with the CPU benchmarks); :func:`pedantic_device_time` gives pytest-benchmark its own host-clock
  rounds of the same call and puts the device timing beside them (the results file's ``stats`` of the
  benchmark are the device figures: ``fmspec/plugin.py``).

Nothing here touches the GPU at import time.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from fmspec import benchutil as bu

QUANTILES = (0.2, 0.5, 0.8)
WARMUP_MS = 25
REP_MS = 100
HOST_ROUNDS = 5  # pytest-benchmark's own rounds of a device-timed call (host clock, after one warm-up round)


@dataclass(frozen=True)
class Timing:
    """Device time of one call, in milliseconds: median and the 20th/80th percentiles of the repetitions.

    ``fn`` is the call that was timed (and ``grads`` the tensors whose ``.grad`` is reset before each
    repetition), kept so that :func:`pedantic_device_time` can hand the same call to pytest-benchmark; neither
    is a number of the measurement (:func:`summary` leaves them out). A timing kept beyond its test (a cache
    of baselines shared by candidates) keeps :func:`numbers` of it: the call holds its inputs alive."""

    median_ms: float
    p20_ms: float
    p80_ms: float
    fn: Callable[[], object] | None = field(default=None, compare=False, repr=False)
    grads: tuple[torch.Tensor, ...] = field(default=(), compare=False, repr=False)

    @property
    def spread(self) -> float:
        """(p80 - p20) / median: how much two timings of the same code may differ by noise alone."""
        return (self.p80_ms - self.p20_ms) / self.median_ms if self.median_ms > 0 else math.inf


@dataclass(frozen=True)
class Cost:
    """The work of one call: floating-point operations and the fewest bytes moved through device memory."""

    flops: float
    bytes: float
    model: str  # the formula, e.g. "fwd 4·B·H·Tq·Tk·D (causal: half)"

    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else math.inf


def numbers(timing: Timing | None) -> Timing | None:
    """``timing`` without its call (None stays None): what a cache that outlives the test keeps, so that the
    call's inputs (tensors, a model, an optimizer's state) are freed with the test."""
    return replace(timing, fn=None, grads=()) if timing is not None else None


def time_ms(fn: Callable[[], object], warmup_ms: int = WARMUP_MS, rep_ms: int = REP_MS,
            grad_to_none: list[torch.Tensor] | None = None) -> Timing:
    """Device time of ``fn()`` (``triton.testing.do_bench``: warm-up, L2 flush, CUDA events, quantiles)."""
    from triton.testing import do_bench

    p20, med, p80 = do_bench(fn, warmup=warmup_ms, rep=rep_ms, grad_to_none=grad_to_none, quantiles=list(QUANTILES))
    return Timing(median_ms=float(med), p20_ms=float(p20), p80_ms=float(p80), fn=fn, grads=tuple(grad_to_none or ()))


@functools.lru_cache(maxsize=None)
def ceilings(device: str = "cuda", dtype: torch.dtype = torch.bfloat16) -> dict:
    """Measured once per process: the matmul rate (TFLOP/s, n = 8192 product of random ``dtype``
    matrices) and the copy bandwidth (GB/s of a 1 GiB device-to-device copy, read + write)."""
    n = 8192
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    mm = time_ms(lambda: a @ b)
    src = torch.randn(2**28, device=device, dtype=torch.float32)  # 1 GiB
    dst = torch.empty_like(src)
    cp = time_ms(lambda: dst.copy_(src))
    out = {
        "matmul_tflops": 2 * n**3 / (mm.median_ms * 1e-3) / 1e12,
        "copy_gbps": 2 * src.numel() * src.element_size() / (cp.median_ms * 1e-3) / 1e9,
        "matmul_dtype": str(dtype).removeprefix("torch."),
        "device": torch.cuda.get_device_name(torch.device(device)),
    }
    del a, b, src, dst
    torch.cuda.empty_cache()
    return out


def rates(cost: Cost, timing: Timing, ceiling: dict) -> dict:
    """TFLOP/s, GB/s, and the fraction of the measured ceiling that binds (the roofline)."""
    sec = timing.median_ms * 1e-3
    tflops = cost.flops / sec / 1e12
    gbps = cost.bytes / sec / 1e9
    # roofline: the time the better of the two ceilings allows, over the time measured
    floor_s = max(cost.flops / (ceiling["matmul_tflops"] * 1e12), cost.bytes / (ceiling["copy_gbps"] * 1e9))
    return {
        "tflops": tflops,
        "gbps": gbps,
        "fraction_of_matmul_ceiling": tflops / ceiling["matmul_tflops"],
        "fraction_of_copy_ceiling": gbps / ceiling["copy_gbps"],
        "fraction_of_roofline": floor_s / sec,
        "bound": "compute" if cost.flops / (ceiling["matmul_tflops"] * 1e12) >= cost.bytes / (ceiling["copy_gbps"] * 1e9)
        else "memory",
    }


def summary(timing: Timing, cost: Cost, ceiling: dict, baselines: dict[str, Timing | None] | None = None) -> dict:
    """Every number of one measurement, ready for :func:`record`; ``baselines`` maps a name (``sdpa_flash``,
    ``reference``, ...) to its timing on the same shape (None: not available on this device)."""
    out = {"median_ms": timing.median_ms, "p20_ms": timing.p20_ms, "p80_ms": timing.p80_ms, "spread": timing.spread,
           "flops": cost.flops, "bytes": cost.bytes, "cost_model": cost.model, **rates(cost, timing, ceiling),
           "ceiling_matmul_tflops": ceiling["matmul_tflops"], "ceiling_copy_gbps": ceiling["copy_gbps"]}
    for name, base in (baselines or {}).items():
        out[f"{name}_ms"] = base.median_ms if base else None
        out[f"speedup_vs_{name}"] = base.median_ms / timing.median_ms if base else None
    return out


def pedantic_device_time(benchmark, timing: Timing) -> None:
    """Hand ``timing``'s call to pytest-benchmark and put the device timing beside its record.

    pytest-benchmark times :data:`HOST_ROUNDS` rounds of the call followed by a device synchronisation (the
    host clock: launch overhead included, L2 warm), which is what its own table shows; the device timing
    (CUDA events, L2 flushed) goes to ``benchmark.extra_info[bu.DEVICE_TIME]``, from which fmspec's results
    file takes the benchmark's ``stats`` (``fmspec/plugin.py``). Without CUDA in use (the CPU check of a
    bench) the rounds are not synchronised. ``benchmark`` may be None (benchmarks disabled)."""
    if benchmark is None:
        return
    if timing.fn is None:
        raise ValueError("pedantic_device_time needs the timed call: a Timing from time_ms or dry_time, not numbers()")
    benchmark.extra_info[bu.DEVICE_TIME] = {"median_ms": timing.median_ms, "p20_ms": timing.p20_ms,
                                            "p80_ms": timing.p80_ms, "timer": "triton.testing.do_bench"}
    if not benchmark.enabled:  # --benchmark-disable: nothing to time
        return
    fn, grads = timing.fn, timing.grads
    synchronize = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)

    def round_():
        fn()
        synchronize()

    def reset():  # as do_bench's grad_to_none: gradients do not accumulate over the rounds
        for t in grads:
            t.grad = None

    benchmark.pedantic(round_, setup=reset if grads else None, rounds=HOST_ROUNDS, iterations=1, warmup_rounds=1)


def allocator_peak(fn: Callable[[], object], device: str = "cuda") -> int:
    """Peak bytes the caching allocator held during ``fn()`` beyond what was held before it."""
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


# ------------------------------------------------------------------------------ the CPU check of a bench
# A bench's point code runs once on CPU, untimed, in a test of its own (so a GPU run cannot die on a typo):
# these stand in for the timer, the allocator and the ceilings there.
DRY_CEILING = {"matmul_tflops": 1.0, "copy_gbps": 1.0}  # stands in for ceilings() on CPU


def dry_time(fn: Callable[[], object], warmup_ms: int = WARMUP_MS, rep_ms: int = REP_MS,
             grad_to_none: list[torch.Tensor] | None = None) -> Timing:
    """``time_ms``'s stand-in on CPU: runs ``fn`` once and says 1 ms (the code path, not a time)."""
    fn()
    return Timing(1.0, 1.0, 1.0, fn=fn, grads=tuple(grad_to_none or ()))


def dry_peak(fn: Callable[[], object], device: str = "cpu") -> int:
    """``allocator_peak``'s stand-in on CPU (no allocator statistics there): runs ``fn`` and says 0."""
    fn()
    return 0


def randn(shape: tuple[int, ...], seed: int, device: str, dtype: torch.dtype, scale: float = 1.0) -> torch.Tensor:
    """Normal entries drawn on ``device`` from ``seed`` (a 16384 × 4096 input drawn on the CPU in float64
    costs seconds)."""
    gen = torch.Generator(device).manual_seed(seed)
    return torch.randn(shape, generator=gen, device=device, dtype=dtype) * scale
