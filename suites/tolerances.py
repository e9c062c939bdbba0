"""Tolerances, reasoned once per dtype. Every suite imports them from here (``as tol``).

Errors are measured against a float64 oracle and relative to the oracle's own scale::

    rel_error(actual, oracle) = max|actual - oracle| / max|oracle|

so an all-zero or constant output has a relative error near 1 whenever the oracle is not itself zero or
constant: it can never hide under an absolute tolerance (a known hole in earlier kernel benchmarks).

The error allowed for a result computed in ``dtype`` is::

    allowed = max(BASELINE_FACTOR * rel_error(baseline, oracle),  # a plain same-dtype computation
                  ULPS * eps(dtype) * sqrt(n))                      # rounding floor

``n`` is the length of the longest reduction behind one output element (a dot product over D, a softmax
over T, a sum over a batch): rounding errors of n terms accumulate like sqrt(n)·eps when they are random
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., sec. 2.8), n·eps at worst. ``ULPS``
absorbs the constant in front and the few chained operations per element (exp, a division, a rescale).
``BASELINE_FACTOR = 2`` follows flash-attention's own tests: a candidate may be at most twice as wrong
as the plain computation in the same dtype.

**Low precision.** float16 and bfloat16 are storage formats: sums are carried in float32 (tensor cores,
PyTorch's CPU kernels, every FlashAttention kernel), so the reduction term uses float32's eps, and the
low precision adds a fixed ``STORAGE_ULPS · eps(dtype)`` for rounding the result (and the chained
intermediates a kernel stores, such as P before P·V) to it::

    rounding_floor(float16, n) = 32 · 2^-23 · sqrt(n) + 2 · 2^-10      (about 0.002 for n = 4096)

A floor of ``ULPS · eps(float16) · sqrt(n)`` would be 0.03 to 2.7 at the suite's sizes: wide enough to
pass a kernel that accumulates in float16, or one that keeps the log-sum-exp in it. Input rounding is
not in the floor: low-precision checks always pass a same-dtype baseline computed from the same rounded
inputs, and its error carries it.
"""

from __future__ import annotations

import math

import torch

EPS = {
    torch.float64: 2.0**-52,
    torch.float32: 2.0**-23,
    torch.float16: 2.0**-10,
    torch.bfloat16: 2.0**-7,
}
ULPS = 32.0
BASELINE_FACTOR = 2.0
ACCUMULATE = {  # the precision a reduction over inputs of this dtype is carried in
    torch.float64: torch.float64,
    torch.float32: torch.float32,
    torch.float16: torch.float32,
    torch.bfloat16: torch.float32,
}
STORAGE_ULPS = 2.0
# Exact outputs (integers, token ids, masks, quantized codes) are compared with ==, never with a tolerance.


def eps(dtype: torch.dtype) -> float:
    if dtype not in EPS:
        raise ValueError(f"no tolerance for dtype {dtype}; known: {', '.join(str(d) for d in EPS)}")
    return EPS[dtype]


def rounding_floor(dtype: torch.dtype, n: int = 1) -> float:
    """The error rounding alone may cause: ULPS · eps(accumulation) · sqrt(n), plus STORAGE_ULPS · eps(dtype)
    where the accumulation is wider than ``dtype`` (float16, bfloat16)."""
    accumulation = ACCUMULATE.get(dtype, dtype)
    floor = ULPS * eps(accumulation) * math.sqrt(max(n, 1))
    if accumulation != dtype:
        floor += STORAGE_ULPS * eps(dtype)
    return floor


def rel_error(actual: torch.Tensor, oracle: torch.Tensor, scale: float = 0.0) -> float:
    """max|actual - oracle| / max(max|oracle|, scale), computed in float64; inf if actual has NaN or inf where
    oracle is finite.

    ``scale`` is for results that are sums of terms which cancel (a softmax gradient: its terms sum to 0
    along a row): rounding errors are relative to the terms, which may be far larger than the result."""
    a = actual.detach().to(torch.float64).cpu()
    o = oracle.detach().to(torch.float64).cpu()
    if a.numel() == 0:
        return 0.0
    finite = torch.isfinite(o)
    if not torch.equal(torch.isfinite(a), finite) or not torch.equal(a[~finite], o[~finite]):
        return math.inf
    diff = (a[finite] - o[finite]).abs().max().item() if finite.any() else 0.0
    scale = max(o[finite].abs().max().item() if finite.any() else 0.0, scale)
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


def rms_rel_error(actual: torch.Tensor, oracle: torch.Tensor) -> float:
    """sqrt(mean (actual - oracle)²) / sqrt(mean oracle²), in float64: the typical error of a statistical
    estimate (random features), where the worst element says little; inf if ``actual`` is not finite."""
    a, o = actual.detach().to(torch.float64).cpu(), oracle.detach().to(torch.float64).cpu()
    err = (a - o).pow(2).mean().sqrt().item()
    return err / max(o.pow(2).mean().sqrt().item(), 1e-300) if math.isfinite(err) else math.inf


def allowed(dtype: torch.dtype, n: int = 1, baseline_error: float | None = None) -> float:
    """The relative error a result in ``dtype`` may have (see the module docstring)."""
    floor = rounding_floor(dtype, n)
    if baseline_error is None:
        return floor
    return max(BASELINE_FACTOR * baseline_error, floor)


RERUN_TERMS = 2**20  # the longest reduction a benchmark's call is assumed to carry (see rerun)


def rerun(dtype: torch.dtype) -> float:
    """The relative error between two runs of the same call on the same inputs (a benchmark's timed round
    against its checked run, ``asserts.assert_same_result``): equal in principle, but a reduction may be
    split differently between runs (threads, atomic adds on a GPU), so the rounding floor of a reduction of
    up to ``RERUN_TERMS`` terms: 0.004 in float32, 0.02 in bfloat16, 1e-11 in float64. A round that skipped
    its work (zeros, a stale or partial output) is off by about 1."""
    return rounding_floor(dtype, RERUN_TERMS)
