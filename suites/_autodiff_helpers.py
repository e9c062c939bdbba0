"""Random straight-line programs for the autodiff suite, and the torch operations its oracle runs them with.

A :class:`Program` is a list of steps z_t = h_t(earlier z's) over the inputs z_0..z_{d-1}; its output is
the last step. :func:`scalar_programs` and :func:`tensor_programs` draw them as DAGs: an argument is any
earlier variable (so one variable feeds several steps and sub-expressions are shared), a step may add
up several variables (wide fan-in), and programs run up to a few dozen steps (deep chains). Each
program is written both with ``ops.*`` calls and with Python operators, floats on either side.

Inputs are drawn first and the program is built while evaluating it in float64, so every step stays
inside its operation's domain and well conditioned: log sees values >= 0.1, a division a denominator
of size >= 0.25, exp arguments <= 5, relu arguments away from the kink at 0, and no value exceeds
1e3. A step whose guard fails is replaced by tanh (always defined). A failing example prints as a
Python function that reproduces it (``Program.source()``).

``TORCH_OPS`` runs the same program on torch tensors, so torch.autograd in float64 is the oracle, for
gradients and (by the double-vjp trick) for jvps.
"""

from __future__ import annotations

import functools
import math
import types
from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from fmspec.suites import strategies as hh
from fmspec.suites import tolerances as tol

# On top of the profile (whose other settings it inherits, being built when the suite is collected):
# stop at the first failure and shrink only that one. A wrong engine fails in several places (a wrong
# value here, a shape error there), and hypothesis would otherwise shrink each place separately, at the
# cost of a few hundred program runs apiece; one minimal failing program per property is what a
# conformance report needs.

UNARY = ("neg", "sin", "cos", "exp", "log", "tanh", "sigmoid", "relu")
BINARY = ("add", "sub", "mul", "div")
SCALAR_OPS = BINARY + UNARY + ("pow",)
TENSOR_OPS = ("matmul", "sum", "mean", "reshape", "transpose")
OPERATOR = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
EXPONENTS = (2.0, 3.0, -1.0, 0.5, 1.5, -2.0)
CONSTANTS = (2.0, -3.0, 0.5, 1.5)
LIMIT = 1e3  # no intermediate value larger than this (see Oracle.magnitude)

TORCH_OPS = types.SimpleNamespace(
    add=torch.add, sub=torch.sub, mul=torch.mul, div=torch.div, neg=torch.neg, pow=torch.pow,
    sin=torch.sin, cos=torch.cos, exp=torch.exp, log=torch.log, tanh=torch.tanh, sigmoid=torch.sigmoid,
    relu=torch.relu, matmul=torch.matmul,
    sum=lambda x, dim=None, keepdim=False: x.sum() if dim is None else x.sum(dim, keepdim=keepdim),
    mean=lambda x, dim=None, keepdim=False: x.mean() if dim is None else x.mean(dim, keepdim=keepdim),
    reshape=torch.reshape, transpose=lambda x, dim0=-2, dim1=-1: x.transpose(dim0, dim1),
)


@dataclass(frozen=True)
class Step:
    """z = h(args): ``form`` is how the program writes it (an ops call, an operator, a constant on one side)."""

    form: str  # "call", "binop", "lconst", "rconst", "neg", "fanin"
    op: str  # an ops name ("sin", "sum", ...) or an operator ("+", "@", "**")
    args: tuple[int, ...]
    const: float | None = None
    kwargs: tuple = ()  # (name, value) pairs for ops calls (dim, keepdim, shape)

    def run(self, ops, z: list):
        a = [z[i] for i in self.args]
        if self.form == "call":
            if self.op == "pow":
                return ops.pow(a[0], self.const)
            return getattr(ops, self.op)(*a, **dict(self.kwargs))
        if self.form == "binop":
            return _binop(self.op, a[0], a[1])
        if self.form == "lconst":
            return _binop(self.op, self.const, a[0])
        if self.form == "rconst":
            return _binop(self.op, a[0], self.const)
        if self.form == "neg":
            return -a[0]
        if self.form == "fanin":
            out = a[0]
            for b in a[1:]:
                out = out + b
            return out
        raise ValueError(self.form)

    def source(self) -> str:
        a = [f"z{i}" for i in self.args]
        if self.form == "call":
            extra = [repr(self.const)] if self.op == "pow" else [f"{k}={v!r}" for k, v in self.kwargs]
            return f"ops.{self.op}({', '.join(a + extra)})"
        if self.form == "binop":
            return f"{a[0]} {self.op} {a[1]}"
        if self.form == "lconst":
            return f"{self.const!r} {self.op} {a[0]}"
        if self.form == "rconst":
            return f"{a[0]} {self.op} {self.const!r}"
        if self.form == "neg":
            return f"-{a[0]}"
        return " + ".join(a)


def _binop(op: str, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "@":
        return a @ b
    if op == "**":
        return a**b
    raise ValueError(op)


@dataclass(frozen=True)
class Program:
    """A straight-line program over ``len(xs)`` inputs; ``xs`` are the inputs it was drawn for.

    The output adds up every sink (a variable no later step uses), so no step is dead code; tensor
    programs reduce each sink with ``reduce`` (sum or mean) first, or, without ``reduce``, add the other
    sinks' sums to the last step.
    """

    xs: tuple
    steps: tuple[Step, ...]
    reduce: str | None = None  # tensor programs: "sum" or "mean" of each sink makes a scalar for grad
    seed: int = 0  # for tangents and cotangents

    @property
    def n_inputs(self) -> int:
        return len(self.xs)

    @property
    def sinks(self) -> list[int]:
        used = {i for step in self.steps for i in step.args}
        last = self.n_inputs + len(self.steps) - 1
        return [t for t in range(self.n_inputs, last) if t not in used] + [last]

    def __call__(self, ops, *xs):
        return self.trace(ops, *xs)[-1]

    def trace(self, ops, *xs) -> list:
        """Every variable z_0..z_T of the program run with ``ops`` (the last one is the output)."""
        z = list(xs)
        for step in self.steps:
            z.append(step.run(ops, z))
        sinks = self.sinks
        if self.reduce is not None:
            out = getattr(ops, self.reduce)(z[sinks[0]])
            for t in sinks[1:]:
                out = out + getattr(ops, self.reduce)(z[t])
            z.append(out)
        elif len(sinks) > 1:
            shapes = self.shapes
            out = z[sinks[-1]]
            for t in sinks[:-1]:
                out = out + (ops.sum(z[t]) if shapes[t] else z[t])
            z.append(out)
        return z

    def source(self) -> str:
        names = ", ".join(f"z{i}" for i in range(self.n_inputs))
        lines = [f"def f(ops, {names}):"]
        for t, step in enumerate(self.steps, start=self.n_inputs):
            lines.append(f"    z{t} = {step.source()}")
        sinks = self.sinks
        if self.reduce is not None:
            out = " + ".join(f"ops.{self.reduce}(z{t})" for t in sinks)
        else:
            shapes = self.shapes
            out = " + ".join([f"z{sinks[-1]}"] + [f"ops.sum(z{t})" if shapes[t] else f"z{t}" for t in sinks[:-1]])
        lines.append(f"    return {out}")
        return "\n".join(lines)

    @functools.cached_property
    def shapes(self) -> list[tuple]:
        """The shape of every variable (run once with torch)."""
        with torch.no_grad():
            z = list(self.tensors())
            for step in self.steps:
                z.append(step.run(TORCH_OPS, z))
        return [tuple(t.shape) for t in z]

    def __repr__(self) -> str:
        shown = [f"tensor(shape={tuple(x.shape)})" if isinstance(x, torch.Tensor) else repr(x) for x in self.xs]
        return f"\n{self.source()}\n# at xs = ({', '.join(shown)}), seed={self.seed}\n"

    def tensors(self, requires_grad: bool = False, dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
        """The inputs as tensors (leaves for torch.autograd when ``requires_grad``)."""
        return [torch.as_tensor(x, dtype=torch.float64).detach().to(dtype).clone().requires_grad_(requires_grad)
                for x in self.xs]


# ------------------------------------------------------------------------------------- the guards
def _ok(v: torch.Tensor) -> bool:
    return bool(torch.isfinite(v).all()) and bool((v.abs() <= LIMIT).all())


def _guarded(op: str, vals: list[torch.Tensor], const: float | None = None) -> torch.Tensor | None:
    """The value of op(vals), or None when it would leave the domain or the well-conditioned range."""
    a = vals[0]
    b = vals[1] if len(vals) > 1 else None
    if op in ("div", "/") and b is not None and not bool((b.abs() >= 0.25).all()):
        return None
    if op == "log" and not bool((a >= 0.1).all()):
        return None
    if op == "exp" and not bool((a <= 5).all()):
        return None
    if op == "relu" and not bool((a.abs() >= 1e-3).all()):
        return None
    if op == "pow":
        if const != int(const) and not bool((a >= 0.1).all()):
            return None
        if const < 0 and not bool((a.abs() >= 0.25).all()):
            return None
    if op == "rdiv" and not bool((a.abs() >= 0.25).all()):
        return None
    with torch.no_grad():
        out = _EVAL[op](vals, const)
    return out if _ok(out) else None


_EVAL = {
    "add": lambda v, c: v[0] + v[1], "sub": lambda v, c: v[0] - v[1], "mul": lambda v, c: v[0] * v[1],
    "div": lambda v, c: v[0] / v[1], "neg": lambda v, c: -v[0], "sin": lambda v, c: v[0].sin(),
    "cos": lambda v, c: v[0].cos(), "exp": lambda v, c: v[0].exp(), "log": lambda v, c: v[0].log(),
    "tanh": lambda v, c: v[0].tanh(), "sigmoid": lambda v, c: v[0].sigmoid(), "relu": lambda v, c: v[0].relu(),
    "pow": lambda v, c: v[0] ** c, "rdiv": lambda v, c: c / v[0],
}
_SYMBOL = {"+": "add", "-": "sub", "*": "mul", "/": "div"}

# Strategies are built once: building one per draw costs more than the draw.
_BACK = st.integers(0, 63)  # how far back an argument lies; shrinks to the latest variable (deep chains)
_CONST = st.sampled_from(CONSTANTS)
_EXPONENT = st.sampled_from(EXPONENTS)
_INPUT = st.floats(-2.0, 2.0, allow_nan=False).map(lambda v: round(v, 3))
# every instruction a scalar step may be: (form, op)
SCALAR_STEPS = st.sampled_from(
    [("call", op) for op in BINARY + UNARY[1:]] + [("binop", s) for s in OPERATOR.values()]
    + [(form, s) for form in ("lconst", "rconst") for s in OPERATOR.values()]
    + [("neg", "-"), ("call", "neg"), ("call", "pow"), ("rconst", "**"), ("fanin", "+")])
_FANIN = st.lists(_BACK, min_size=2, max_size=5)


def _arg(draw, n: int) -> int:
    return n - 1 - draw(_BACK) % n


# ----------------------------------------------------------------------------- scalar programs
@st.composite
def scalar_programs(draw, max_inputs: int = 3, max_steps: int = 16) -> Program:
    """A random scalar straight-line program (see the module docstring) with its inputs."""
    d = draw(st.integers(1, max_inputs))
    xs = tuple(draw(_INPUT) for _ in range(d))
    vals = [torch.tensor(x, dtype=torch.float64) for x in xs]
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        step, value = _draw_scalar_step(draw, vals)
        steps.append(step)
        vals.append(value)
    return Program(xs, tuple(steps), seed=draw(hh.seeds()))


def _draw_scalar_step(draw, vals: list) -> tuple[Step, torch.Tensor]:
    n = len(vals)
    form, op = draw(SCALAR_STEPS)
    i = _arg(draw, n)
    a = vals[i]
    if form == "call" and op in BINARY:
        j = _arg(draw, n)
        step, value = Step("call", op, (i, j)), _guarded(op, [a, vals[j]])
    elif form == "binop":
        j = _arg(draw, n)
        step, value = Step("binop", op, (i, j)), _guarded(_SYMBOL[op], [a, vals[j]])
    elif form == "lconst":  # c (op) z
        c = draw(_CONST)
        step = Step("lconst", op, (i,), c)
        value = _guarded("rdiv", [a], c) if op == "/" else _guarded(_SYMBOL[op], [torch.tensor(c, dtype=torch.float64), a])
    elif form == "rconst" and op == "**":
        c = draw(_EXPONENT)
        step, value = Step("rconst", "**", (i,), c), _guarded("pow", [a], c)
    elif form == "rconst":  # z (op) c
        c = draw(_CONST)
        step, value = Step("rconst", op, (i,), c), _guarded(_SYMBOL[op], [a, torch.tensor(c, dtype=torch.float64)])
    elif form == "call" and op == "pow":
        c = draw(_EXPONENT)
        step, value = Step("call", "pow", (i,), c), _guarded("pow", [a], c)
    elif form == "neg":
        step, value = Step("neg", "-", (i,)), -a
    elif form == "fanin":  # wide fan-in: z = z_i + z_j + ... with repeats allowed
        args = (i,) + tuple(n - 1 - k % n for k in draw(_FANIN))
        step = Step("fanin", "+", args)
        value = sum(vals[k] for k in args)
        value = value if _ok(value) else None
    else:  # unary ops.<op>
        step, value = Step("call", op, (i,)), _guarded(op, [a])
    if value is None:  # outside the domain or too large: tanh is always safe
        step, value = Step("call", "tanh", (i,)), a.tanh()
    return step, value


# ----------------------------------------------------------------------------- tensor programs
TENSOR_STEPS = st.sampled_from(("unary", "binary", "const", "matmul", "reduce", "reshape", "transpose"))
_UNARY = st.sampled_from(UNARY)
_BINARY = st.sampled_from(BINARY)


@st.composite
def tensor_programs(draw, max_inputs: int = 3, max_steps: int = 10, reduce: bool = True) -> Program:
    """A random tensor program: elementwise ops with broadcasting, matmul, sum/mean, reshape, transpose.

    Input shapes come from two sizes m, n (1 to 4) so that broadcasting and matmul chains occur:
    (m, n), (n, m), (n,), (m, 1), (1, n), (). With ``reduce`` the output is summed (or averaged) to a scalar.
    """
    m, n = draw(hh.sizes(1, 4)), draw(hh.sizes(1, 4))
    pool = [(m, n), (n, m), (n,), (m, 1), (1, n), ()]
    d = draw(st.integers(1, max_inputs))
    seed = draw(hh.seeds())
    shapes = [draw(st.sampled_from(pool[:5] if i == 0 else pool)) for i in range(d)]
    xs = tuple(hh.randn(s, seed + i) for i, s in enumerate(shapes))
    vals = list(xs)
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        step, value = _draw_tensor_step(draw, vals)
        steps.append(step)
        vals.append(value)
    red = draw(st.sampled_from(("sum", "mean"))) if reduce else None
    return Program(xs, tuple(steps), reduce=red, seed=seed)


def _broadcasts(a: torch.Tensor, b: torch.Tensor) -> bool:
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        return False
    return True


def _draw_tensor_step(draw, vals: list) -> tuple[Step, torch.Tensor]:
    n = len(vals)
    kind = draw(TENSOR_STEPS)
    i = _arg(draw, n)
    a = vals[i]
    step, value = None, None
    if kind == "unary":
        op = draw(_UNARY)
        step = Step("neg", "-", (i,)) if op == "neg" and draw(st.booleans()) else Step("call", op, (i,))
        value = _guarded(op, [a])
    elif kind == "binary":
        j = _arg(draw, n)
        op = draw(_BINARY)
        if _broadcasts(a, vals[j]):
            step = Step("call", op, (i, j)) if draw(st.booleans()) else Step("binop", OPERATOR[op], (i, j))
            value = _guarded(op, [a, vals[j]])
    elif kind == "const":
        op = draw(_BINARY)
        c = draw(_CONST)
        ct = torch.tensor(c, dtype=torch.float64)
        if draw(st.booleans()):
            step = Step("lconst", OPERATOR[op], (i,), c)
            value = _guarded("rdiv", [a], c) if op == "div" else _guarded(op, [ct, a])
        else:
            step = Step("rconst", OPERATOR[op], (i,), c)
            value = _guarded(op, [a, ct])
    elif kind == "matmul":
        partners = [j for j in range(n) if a.dim() in (1, 2) and vals[j].dim() in (1, 2) and a.dim() + vals[j].dim() >= 3
                    and a.shape[-1] == vals[j].shape[0]]
        if partners:
            j = partners[draw(_BACK) % len(partners)]
            step = Step("call", "matmul", (i, j)) if draw(st.booleans()) else Step("binop", "@", (i, j))
            value = a @ vals[j]
            value = value if _ok(value) else None
    elif kind == "reduce" and a.dim() >= 1:
        op = draw(st.sampled_from(("sum", "mean")))
        dim = draw(st.sampled_from([None] + list(range(-a.dim(), a.dim()))))
        keepdim = draw(st.booleans()) if dim is not None else False
        kwargs = (("dim", dim), ("keepdim", keepdim)) if dim is not None else ()
        step = Step("call", op, (i,), kwargs=kwargs)
        value = getattr(TORCH_OPS, op)(a, **dict(kwargs))
        value = value if _ok(value) else None
    elif kind == "reshape" and a.dim() >= 1:
        shapes = [(a.numel(),), (1, a.numel()), (a.numel(), 1)] + ([tuple(a.shape[::-1])] if a.dim() == 2 else [])
        shape = shapes[draw(_BACK) % len(shapes)]
        step = Step("call", "reshape", (i,), kwargs=(("shape", tuple(shape)),))
        value = a.reshape(shape)
    elif kind == "transpose" and a.dim() == 2:
        step = Step("call", "transpose", (i,))
        value = a.transpose(-2, -1)
    if step is None or value is None:
        step, value = Step("call", "tanh", (i,)), a.tanh()
    return step, value


# ------------------------------------------------------------------------------------- the oracle
@dataclass(frozen=True)
class Oracle:
    """What torch.autograd says about a program, and the scales its rounding errors live at.

    ``scale`` is the largest adjoint dz_T/dz_t (reverse) or tangent ż_t (forward) over every variable: a
    derivative is a sum of terms of that size, so its rounding error is relative to it, not to the
    result (x/(5x) has gradient 0, formed as 1/(5x) - 5x/(5x)²). ``magnitude`` is the largest |z_t|:
    a value that large carries an absolute error of magnitude·eps into every later step (sin of a value
    near 100 is off by ~1e-14 even when the sin itself is small), hence into values and derivatives.
    """

    value: torch.Tensor
    derivative: list[torch.Tensor] | torch.Tensor  # gradients (one per input) or the output tangent
    scale: float
    magnitude: float


def _magnitude(z: list) -> float:
    return max([1.0] + [torch.as_tensor(t).detach().abs().max().item() for t in z if torch.as_tensor(t).numel()])


def torch_grad(program: Program, cotangent: torch.Tensor | None = None) -> Oracle:
    """Value and gradient (or vᵀJ for a ``cotangent``) of a program by torch.autograd in float64."""
    xs = program.tensors(requires_grad=True)
    z = program.trace(TORCH_OPS, *xs)
    for t in z[len(xs):]:
        if t.requires_grad:
            t.retain_grad()
    out = z[-1]
    seed = torch.ones_like(out) if cotangent is None else cotangent.to(torch.float64)
    out.backward(seed)
    grads = [torch.zeros_like(x) if x.grad is None else x.grad for x in xs]
    scale = max([seed.abs().max().item()] + [t.grad.abs().max().item() for t in z if t.grad is not None and t.numel()])
    return Oracle(out.detach(), grads, scale, _magnitude(z))


def torch_jvp(program: Program, tangents: list[torch.Tensor]) -> Oracle:
    """Value and J·u of a program by torch.autograd in float64, with the double-vjp trick.

    For every variable at once, Z = (z_0, ..., z_T): g(v) = J_Zᵀ v is linear in v, so the derivative of
    ⟨g(v), u⟩ with respect to v is J_Z u, the tangents ż_t of every variable (one double backward).
    """
    xs = program.tensors(requires_grad=True)
    z = program.trace(TORCH_OPS, *xs)
    every = torch.cat([torch.as_tensor(t).reshape(-1) for t in z])
    v = torch.zeros_like(every, requires_grad=True)
    pulled = torch.autograd.grad(every, xs, grad_outputs=v, create_graph=True, allow_unused=True)
    inner = sum((g * u.to(torch.float64)).sum() for g, u in zip(pulled, tangents) if g is not None)
    (dots,) = torch.autograd.grad(inner, v)
    out = z[-1]
    tangent = dots[every.numel() - out.numel():].reshape(out.shape)
    return Oracle(out.detach(), tangent.detach(), dots.abs().max().item(), _magnitude(z))


def check_value(actual, oracle: Oracle, program: Program, *, where: str) -> None:
    """The program's value (flattened: a float or a tensor), its error relative to the largest intermediate value."""
    __tracebackhide__ = True
    assert_close_at_scale(flat(actual, name="value", where=where), oracle.value.reshape(-1), scale=oracle.magnitude, dtype=torch.float64, n=size(program),
                          name="value", where=where)


def check_derivative(actual, expected: torch.Tensor, oracle: Oracle, program: Program, *, name: str = "grad",
                     where: str) -> None:
    """A derivative (gradients flattened, or a tangent), its error relative to the derivative scale, with the
    allowance multiplied by the largest intermediate value (see :class:`Oracle`)."""
    __tracebackhide__ = True
    assert_close_at_scale(actual, expected, scale=oracle.scale, dtype=torch.float64, n=size(program),
                          condition=oracle.magnitude, name=name, where=where)


def directions(program: Program, offset: int = 0) -> list[torch.Tensor]:
    """Random tangent (or cotangent) directions, one per input, from the program's seed."""
    return [hh.randn(tuple(torch.as_tensor(x).shape), program.seed + 1000 + offset + i) for i, x in enumerate(program.xs)]


def flat(values, *, name: str = "out", where: str = "") -> torch.Tensor:
    """A float, a tensor or a sequence of them as one float64 vector; anything else fails the test."""
    __tracebackhide__ = True
    parts = values if isinstance(values, (list, tuple)) else [values]
    out = []
    for i, v in enumerate(parts):
        if isinstance(v, bool) or not isinstance(v, (int, float, torch.Tensor)):
            raise AssertionError(f"{name}[{i}] is {type(v).__name__}, expected a number or a tensor [{where}]")
        v = v.detach() if isinstance(v, torch.Tensor) else torch.tensor(float(v), dtype=torch.float64)
        out.append(v.to(torch.float64).reshape(-1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def size(program: Program) -> int:
    """The reduction length for tolerances: steps times the largest input (terms summed per derivative)."""
    biggest = max((torch.as_tensor(x).numel() for x in program.xs), default=1)
    return (len(program.steps) + 1) * max(biggest, 1) + program.n_inputs


def assert_close_at_scale(actual, oracle: torch.Tensor, *, scale: float, dtype: torch.dtype | None = None,
                          n: int = 1, baseline: torch.Tensor | None = None, condition: float = 1.0,
                          name: str = "out", where: str = "") -> None:
    """``asserts.assert_close`` with the error measured against max(scale, max|oracle|) instead of max|oracle|.

    A derivative is a sum of terms; ``scale`` is the size of those terms. Where they cancel (x/(5x) has
    gradient 0, formed as 1/(5x) - 5x/(5x)²; a layer norm over one feature has dx = 0), a correct result
    may differ from the oracle by a few roundings of the terms, which is huge relative to the result
    itself but not relative to the terms. The baseline's error is measured the same way. ``condition``
    (>= 1) multiplies the allowed error where the inputs of the computation carry known absolute errors.
    """
    __tracebackhide__ = True
    suffix = f" [{where}]" if where else ""
    if isinstance(actual, torch.Tensor) and actual.shape != oracle.shape:
        raise AssertionError(f"{name}.shape={tuple(actual.shape)}, expected {tuple(oracle.shape)}{suffix}")
    a = flat(actual, name=name, where=where)
    o = oracle.detach().to(torch.float64).reshape(-1)
    if a.shape != o.shape:
        raise AssertionError(f"{name}: {a.numel()} values, expected {o.numel()}{suffix}")
    if a.numel() == 0:
        return
    dtype = dtype or (actual.dtype if isinstance(actual, torch.Tensor) else torch.float64)
    denom = max(scale, o.abs().max().item(), torch.finfo(torch.float64).tiny)

    def error(t: torch.Tensor) -> float:
        if not torch.equal(torch.isfinite(t), torch.isfinite(o)):
            return math.inf
        return (t - o).abs().nan_to_num(0.0).max().item() / denom

    base_err = error(baseline.detach().to(torch.float64).reshape(-1)) if baseline is not None else None
    limit = tol.allowed(dtype, n, base_err) * max(condition, 1.0)
    err = error(a)
    if err <= limit:
        return
    i = int((a - o).abs().nan_to_num(math.inf).argmax())
    how = f"{str(dtype).removeprefix('torch.')}, n={n}" + (f", baseline error {base_err:.2g}" if base_err is not None else "")
    raise AssertionError(f"{name}: error {err:.3g} of the scale {denom:.3g} > allowed {limit:.2g} ({how}); "
                         f"worst at [{i}] (flattened): got {a[i].item():.17g}, expected {o[i].item():.17g}{suffix}")
