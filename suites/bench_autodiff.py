"""autodiff benchmark (CPU): the cost of a gradient relative to the cost of the function.

Cost model (lecture 003, Baur and Strassen 1983): a straight-line program z_t = h_t(parents) computes f in
T elementary steps; reverse mode computes f and all d partial derivatives in at most about 5x the time of
f (a forward pass that records the trace, then one backward sweep doing a constant amount of work per
step). Forward mode computes f and one directional derivative ⟨∇f, u⟩ at a similar constant factor (so d
of them for the full gradient). What is counted is wall time of whole calls, Python overhead included:

- ``f``: the plain evaluation ``f(ops, *xs)`` with the candidate's own ``ops`` and no differentiation, the
  inputs as 0-d float64 tensors (what both the reference and torch compute on internally; Python floats
  where a candidate's ops refuse tensors). This is the denominator of the ratios;
- ``grad``: ``grad(f, *xs)`` on Python floats, value and all d partials (ratio ``grad / f``, the lecture's
  bound is about 5);
- ``jvp``: ``jvp(f, xs, u)`` along one random direction (ratio ``jvp / f``);
- and, for scale, ``f_math``: the same program on Python floats with the ``math`` module, the cheapest
  evaluation Python offers (``f_math`` is the same for every candidate; ``*_over_math`` ratios show the
  cost of the engine's values themselves, not of differentiation).

Programs are random scalar straight-line programs of 100, 1,000 and 10,000 steps over d = 16 inputs,
drawn from a seeded ``random.Random`` (the same program on every run): each step is one of the contract's
operations (ops calls and Python operators, constants on either side, powers, sums of several variables)
whose arguments are earlier variables, mostly recent ones (so long chains and shared sub-expressions),
kept inside each operation's domain while drawing (the guards of ``suites/_autodiff_helpers.py``, on
floats). Steps and programs are the suite's (``suites/_autodiff_programs.py``). The output adds up every
sink, so no step is dead code. The program is compiled to one Python function (its source is
``Program.source()``), so evaluating it costs the operations and nothing else.

Host clock (``time.perf_counter`` through pytest-benchmark; the median of the rounds), one process; ``f``
is re-timed inside every record so each ratio is measured under the same load. Each record holds the ratio
of medians (``ratio_to_f``) and of minima (``ratio_to_f_min``, which other load on the machine disturbs least). A candidate that failed
autodiff conformance earlier in the same run is not timed. Run with
``pytest suites/bench_autodiff.py --fmspec-bench [--candidate NAME ...]``.
"""

from __future__ import annotations

import functools
import math
import random
import statistics
import time
import types

import pytest
import torch

from fmspec.suites import _autodiff_programs as adp
from fmspec import benchutil as bu

pytestmark = [pytest.mark.component("autodiff"), pytest.mark.bench]

SIZES = [100, 1000, 10000]
MODES = [pytest.param("f", id="f"), pytest.param("grad", marks=pytest.mark.needs("autodiff.grad"), id="grad"),
         pytest.param("jvp", marks=pytest.mark.needs("autodiff.jvp"), id="jvp")]
INPUTS = 16
SEED = 3
LECTURE_BOUND = 5.0
OPS_NEEDS = tuple(f"autodiff.ops.{op}" for op in adp.SCALAR_OPS)


def rounds(size: int) -> int:
    return 5 if size >= 10000 else 10 if size >= 1000 else 30


MATH_OPS = types.SimpleNamespace(
    add=lambda a, b: a + b, sub=lambda a, b: a - b, mul=lambda a, b: a * b, div=lambda a, b: a / b,
    neg=lambda a: -a, pow=lambda a, c: a**c, sin=math.sin, cos=math.cos, exp=math.exp, log=math.log,
    tanh=math.tanh, sigmoid=lambda a: 1.0 / (1.0 + math.exp(-a)), relu=lambda a: a if a > 0 else 0.0,
)


# ------------------------------------------------------------------------------------------- programs
def _safe(op: str, a: float, b: float | None = None) -> float | None:
    """op(a[, b]) on floats, or None outside the domain or the well-conditioned range (the suite's guards)."""
    if op == "div" and abs(b) < 0.25:
        return None
    if op == "log" and a < 0.1:
        return None
    if op == "exp" and a > 5:
        return None
    if op == "relu" and abs(a) < 1e-3:
        return None
    if op == "pow" and ((b != int(b) and a < 0.1) or (b < 0 and abs(a) < 0.25)):
        return None
    v = getattr(MATH_OPS, op)(a) if b is None or op in ("neg",) else getattr(MATH_OPS, op)(a, b)
    return v if math.isfinite(v) and abs(v) <= adp.LIMIT else None


def _step(rng: random.Random, vals: list[float]) -> tuple[adp.Step, float]:
    n = len(vals)

    def arg() -> int:  # an earlier variable, usually a recent one
        return n - 1 - min(int(rng.expovariate(1 / 8)), n - 1)

    i = arg()
    a = vals[i]
    kind = rng.choice(("call2", "binop", "lconst", "rconst", "pow", "neg", "fanin", "unary", "unary"))
    if kind in ("call2", "binop"):
        j = arg()
        op = rng.choice(adp.BINARY)
        step = adp.Step("call", op, (i, j)) if kind == "call2" else adp.Step("binop", adp.OPERATOR[op], (i, j))
        value = _safe(op, a, vals[j])
    elif kind == "lconst":  # c (op) z
        c, sym = rng.choice(adp.CONSTANTS), rng.choice(list(adp.OP_OF))
        step = adp.Step("lconst", sym, (i,), c)
        value = _safe(adp.OP_OF[sym], c, a) if sym != "/" or abs(a) >= 0.25 else None
    elif kind == "rconst":  # z (op) c
        c, sym = rng.choice(adp.CONSTANTS), rng.choice(list(adp.OP_OF))
        step, value = adp.Step("rconst", sym, (i,), c), _safe(adp.OP_OF[sym], a, c)
    elif kind == "pow":
        c = rng.choice(adp.EXPONENTS)
        step = adp.Step("call", "pow", (i,), c) if rng.random() < 0.5 else adp.Step("rconst", "**", (i,), c)
        value = _safe("pow", a, c)
    elif kind == "neg":
        step, value = (adp.Step("neg", "-", (i,)) if rng.random() < 0.5 else adp.Step("call", "neg", (i,))), -a
    elif kind == "fanin":
        args = (i,) + tuple(arg() for _ in range(rng.randint(2, 5)))
        step, value = adp.Step("fanin", "+", args), math.fsum(vals[k] for k in args)
        value = value if abs(value) <= adp.LIMIT else None
    else:
        op = rng.choice(adp.UNARY[1:])
        step, value = adp.Step("call", op, (i,)), _safe(op, a)
    if value is None:  # outside the domain or too large: tanh is always safe
        step, value = adp.Step("call", "tanh", (i,)), math.tanh(a)
    return step, value


@functools.lru_cache(maxsize=None)
def program(size: int) -> tuple[adp.Program, object]:
    """A random scalar program of ``size`` steps over INPUTS inputs, and its compiled ``f(ops, *xs)``."""
    rng = random.Random(SEED * 1_000_003 + size)
    xs = tuple(round(rng.uniform(-2.0, 2.0), 3) for _ in range(INPUTS))
    vals = list(xs)
    steps = []
    for _ in range(size):
        step, value = _step(rng, vals)
        steps.append(step)
        vals.append(value)
    prog = adp.Program(xs, tuple(steps), seed=SEED)
    prog.__dict__["shapes"] = [()] * (len(xs) + len(steps))  # all scalars (skips running it through torch)
    scope: dict = {}
    exec(compile(prog.source(), f"<autodiff program, {size} steps>", "exec"), scope)  # noqa: S102  our own source
    return prog, scope["f"]


# ------------------------------------------------------------------------------------------- helpers
def seconds_of(fn, n: int) -> tuple[float, float]:
    """(median, min) wall seconds of ``n`` calls of ``fn``."""
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def plain_call(ops, f, xs: tuple):
    """``f(ops, *inputs)`` without differentiation, on 0-d float64 tensors, or floats where ops refuse tensors;
    the call and what the inputs were."""
    tensors = [torch.tensor(x, dtype=torch.float64) for x in xs]
    try:
        f(ops, *tensors)
        return (lambda: f(ops, *tensors)), "float64 0-d tensors"
    except (TypeError, NotImplementedError, AttributeError):
        f(ops, *xs)
        return (lambda: f(ops, *xs)), "floats"


# ------------------------------------------------------------------------------------------- the benchmark
@pytest.mark.needs(*OPS_NEEDS)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"steps{s}")
@pytest.mark.parametrize("mode", MODES)
def test_gradient_cost_ratio(candidate, benchmark, fmspec_metrics, request, mode, size):
    """Time of f, grad and jvp on a random straight-line program of ``size`` steps, and their ratio to the
    time of f itself (the lecture's bound for grad: about 5)."""
    conformance = bu.require_conformance(request, "autodiff", candidate.name)
    ad = candidate.autodiff
    prog, f = program(size)
    xs = prog.xs
    u = tuple(random.Random(SEED + size).uniform(-1.0, 1.0) for _ in xs)
    n = rounds(size)
    plain, inputs = plain_call(ad.ops, f, xs)
    calls = {"f": plain, "grad": lambda: ad.grad(f, *xs), "jvp": lambda: ad.jvp(f, list(xs), list(u))}
    benchmark.group = f"autodiff-{size}-steps"
    bu.pedantic(benchmark, candidate, calls[mode], rounds=n, iterations=1, warmup_rounds=1)
    if benchmark.stats is None:  # --benchmark-disable: pedantic ran the call once, time it here
        seconds, best = seconds_of(bu.shipped(candidate, calls[mode]), n)
    else:
        seconds, best = benchmark.stats.stats.median, benchmark.stats.stats.min
    f_seconds, f_best = seconds_of(bu.shipped(candidate, plain), n)  # the denominator, under the same load
    math_seconds, _ = seconds_of(lambda: f(MATH_OPS, *xs), max(n, 10))
    bu.record(benchmark, fmspec_metrics, {
        "mode": mode, "steps": size, "inputs": INPUTS, "seconds": seconds, "us_per_step": seconds / size * 1e6,
        "f_seconds": f_seconds, "f_inputs": inputs, "ratio_to_f": seconds / f_seconds,
        "min_seconds": best, "f_min_seconds": f_best, "ratio_to_f_min": best / f_best,
        "f_math_seconds": math_seconds, "ratio_to_f_math": seconds / math_seconds,
        "lecture_bound": LECTURE_BOUND, "conformance": conformance,
    }, digits=9)  # f on floats takes microseconds

