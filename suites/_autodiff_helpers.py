"""The autodiff suite's random programs and their oracle (imported ``as adh``); the program language itself
is ``_autodiff_programs`` (imported ``as adp``).

**Strategies.** :func:`scalar_programs` and :func:`tensor_programs` draw programs (``adp.Program``) as
DAGs: an argument is any earlier variable (so one variable feeds several steps and sub-expressions are
shared), a step may add up several variables (wide fan-in), and programs run up to a few dozen steps
(deep chains). Each program is written both with ``ops.*`` calls and with Python operators, floats on
either side. Inputs are drawn first and the program is built while evaluating it in float64, so every
step stays inside its operation's domain and well conditioned: log sees values >= 0.1, a division a
denominator of size >= 0.25, exp arguments <= 5, relu arguments away from the kink at 0, and no value
exceeds ``adp.LIMIT``. A step whose guard fails is replaced by tanh (always defined). :func:`directions`
draws tangents and cotangents from a program's seed.

**Oracle.** :func:`torch_grad` and :func:`torch_jvp` run the same program on torch tensors
(``adp.TORCH_OPS``) through torch.autograd in float64, jvps by the double-vjp trick; the :class:`Oracle`
they return carries the scales a test passes to ``ah.assert_close(scale=, condition=)``, and
:func:`size` the reduction length for ``n=``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import strategies as st

from fmspec.suites import _autodiff_programs as adp
from fmspec.suites import strategies as ss

# ============================================================================================ strategies
# ------------------------------------------------------------------------------------------ the guards
def _ok(v: torch.Tensor) -> bool:
    return bool(torch.isfinite(v).all()) and bool((v.abs() <= adp.LIMIT).all())


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

# Strategies are built once: building one per draw costs more than the draw.
_BACK = st.integers(0, 63)  # how far back an argument lies; shrinks to the latest variable (deep chains)
_CONST = st.sampled_from(adp.CONSTANTS)
_EXPONENT = st.sampled_from(adp.EXPONENTS)
_INPUT = st.floats(-2.0, 2.0, allow_nan=False).map(lambda v: round(v, 3))
# every instruction a scalar step may be: (form, op)
SCALAR_STEPS = st.sampled_from(
    [("call", op) for op in adp.BINARY + adp.UNARY[1:]] + [("binop", s) for s in adp.OPERATOR.values()]
    + [(form, s) for form in ("lconst", "rconst") for s in adp.OPERATOR.values()]
    + [("neg", "-"), ("call", "neg"), ("call", "pow"), ("rconst", "**"), ("fanin", "+")])
_FANIN = st.lists(_BACK, min_size=2, max_size=5)


def _arg(draw, n: int) -> int:
    return n - 1 - draw(_BACK) % n


# ----------------------------------------------------------------------------- scalar programs
@st.composite
def scalar_programs(draw, max_inputs: int = 3, max_steps: int = 16) -> adp.Program:
    """A random scalar straight-line program (see the module docstring) with its inputs."""
    d = draw(st.integers(1, max_inputs))
    xs = tuple(draw(_INPUT) for _ in range(d))
    vals = [torch.tensor(x, dtype=torch.float64) for x in xs]
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        step, value = _draw_scalar_step(draw, vals)
        steps.append(step)
        vals.append(value)
    return adp.Program(xs, tuple(steps), seed=draw(ss.seeds()))


def _draw_scalar_step(draw, vals: list) -> tuple[adp.Step, torch.Tensor]:
    n = len(vals)
    form, op = draw(SCALAR_STEPS)
    i = _arg(draw, n)
    a = vals[i]
    if form == "call" and op in adp.BINARY:
        j = _arg(draw, n)
        step, value = adp.Step("call", op, (i, j)), _guarded(op, [a, vals[j]])
    elif form == "binop":
        j = _arg(draw, n)
        step, value = adp.Step("binop", op, (i, j)), _guarded(adp.OP_OF[op], [a, vals[j]])
    elif form == "lconst":  # c (op) z
        c = draw(_CONST)
        step = adp.Step("lconst", op, (i,), c)
        ct = torch.tensor(c, dtype=torch.float64)
        value = _guarded("rdiv", [a], c) if op == "/" else _guarded(adp.OP_OF[op], [ct, a])
    elif form == "rconst" and op == "**":
        c = draw(_EXPONENT)
        step, value = adp.Step("rconst", "**", (i,), c), _guarded("pow", [a], c)
    elif form == "rconst":  # z (op) c
        c = draw(_CONST)
        ct = torch.tensor(c, dtype=torch.float64)
        step, value = adp.Step("rconst", op, (i,), c), _guarded(adp.OP_OF[op], [a, ct])
    elif form == "call" and op == "pow":
        c = draw(_EXPONENT)
        step, value = adp.Step("call", "pow", (i,), c), _guarded("pow", [a], c)
    elif form == "neg":
        step, value = adp.Step("neg", "-", (i,)), -a
    elif form == "fanin":  # wide fan-in: z = z_i + z_j + ... with repeats allowed
        args = (i,) + tuple(n - 1 - k % n for k in draw(_FANIN))
        step = adp.Step("fanin", "+", args)
        value = sum(vals[k] for k in args)
        value = value if _ok(value) else None
    else:  # unary ops.<op>
        step, value = adp.Step("call", op, (i,)), _guarded(op, [a])
    if value is None:  # outside the domain or too large: tanh is always safe
        step, value = adp.Step("call", "tanh", (i,)), a.tanh()
    return step, value


# ----------------------------------------------------------------------------- tensor programs
TENSOR_STEPS = st.sampled_from(("unary", "binary", "const", "matmul", "reduce", "reshape", "transpose"))
_UNARY = st.sampled_from(adp.UNARY)
_BINARY = st.sampled_from(adp.BINARY)


@st.composite
def tensor_programs(draw, max_inputs: int = 3, max_steps: int = 10, reduce: bool = True) -> adp.Program:
    """A random tensor program: elementwise ops with broadcasting, matmul, sum/mean, reshape, transpose.

    Input shapes come from two sizes m, n (1 to 4) so that broadcasting and matmul chains occur:
    (m, n), (n, m), (n,), (m, 1), (1, n), (). With ``reduce`` the output is summed (or averaged) to a scalar.
    """
    m, n = draw(ss.sizes(1, 4)), draw(ss.sizes(1, 4))
    pool = [(m, n), (n, m), (n,), (m, 1), (1, n), ()]
    d = draw(st.integers(1, max_inputs))
    seed = draw(ss.seeds())
    shapes = [draw(st.sampled_from(pool[:5] if i == 0 else pool)) for i in range(d)]
    xs = tuple(ss.randn(s, seed + i) for i, s in enumerate(shapes))
    vals = list(xs)
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        step, value = _draw_tensor_step(draw, vals)
        steps.append(step)
        vals.append(value)
    red = draw(st.sampled_from(("sum", "mean"))) if reduce else None
    return adp.Program(xs, tuple(steps), reduce=red, seed=seed)


def _broadcasts(a: torch.Tensor, b: torch.Tensor) -> bool:
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError:
        return False
    return True


def _draw_tensor_step(draw, vals: list) -> tuple[adp.Step, torch.Tensor]:
    n = len(vals)
    kind = draw(TENSOR_STEPS)
    i = _arg(draw, n)
    a = vals[i]
    step, value = None, None
    if kind == "unary":
        op = draw(_UNARY)
        step = adp.Step("neg", "-", (i,)) if op == "neg" and draw(st.booleans()) else adp.Step("call", op, (i,))
        value = _guarded(op, [a])
    elif kind == "binary":
        j = _arg(draw, n)
        op = draw(_BINARY)
        if _broadcasts(a, vals[j]):
            step = adp.Step("call", op, (i, j)) if draw(st.booleans()) else adp.Step("binop", adp.OPERATOR[op], (i, j))
            value = _guarded(op, [a, vals[j]])
    elif kind == "const":
        op = draw(_BINARY)
        c = draw(_CONST)
        ct = torch.tensor(c, dtype=torch.float64)
        if draw(st.booleans()):
            step = adp.Step("lconst", adp.OPERATOR[op], (i,), c)
            value = _guarded("rdiv", [a], c) if op == "div" else _guarded(op, [ct, a])
        else:
            step = adp.Step("rconst", adp.OPERATOR[op], (i,), c)
            value = _guarded(op, [a, ct])
    elif kind == "matmul":
        partners = [j for j in range(n) if a.dim() in (1, 2) and vals[j].dim() in (1, 2) and a.dim() + vals[j].dim() >= 3
                    and a.shape[-1] == vals[j].shape[0]]
        if partners:
            j = partners[draw(_BACK) % len(partners)]
            step = adp.Step("call", "matmul", (i, j)) if draw(st.booleans()) else adp.Step("binop", "@", (i, j))
            value = a @ vals[j]
            value = value if _ok(value) else None
    elif kind == "reduce" and a.dim() >= 1:
        op = draw(st.sampled_from(("sum", "mean")))
        dim = draw(st.sampled_from([None] + list(range(-a.dim(), a.dim()))))
        keepdim = draw(st.booleans()) if dim is not None else False
        kwargs = (("dim", dim), ("keepdim", keepdim)) if dim is not None else ()
        step = adp.Step("call", op, (i,), kwargs=kwargs)
        value = getattr(adp.TORCH_OPS, op)(a, **dict(kwargs))
        value = value if _ok(value) else None
    elif kind == "reshape" and a.dim() >= 1:
        shapes = [(a.numel(),), (1, a.numel()), (a.numel(), 1)] + ([tuple(a.shape[::-1])] if a.dim() == 2 else [])
        shape = shapes[draw(_BACK) % len(shapes)]
        step = adp.Step("call", "reshape", (i,), kwargs=(("shape", tuple(shape)),))
        value = a.reshape(shape)
    elif kind == "transpose" and a.dim() == 2:
        step = adp.Step("call", "transpose", (i,))
        value = a.transpose(-2, -1)
    if step is None or value is None:
        step, value = adp.Step("call", "tanh", (i,)), a.tanh()
    return step, value


def directions(program: adp.Program, offset: int = 0) -> list[torch.Tensor]:
    """Random tangent (or cotangent) directions, one per input, from the program's seed."""
    return [ss.randn(tuple(torch.as_tensor(x).shape), program.seed + 1000 + offset + i)
            for i, x in enumerate(program.xs)]


# ================================================================================================ oracle
@dataclass(frozen=True)
class Oracle:
    """What torch.autograd says about a program, and the scales its rounding errors live at.

    ``scale`` is the largest adjoint dz_T/dz_t (reverse) or tangent ż_t (forward) over every variable: a
    derivative is a sum of terms of that size, so its rounding error is relative to it, not to the
    result (x/(5x) has gradient 0, formed as 1/(5x) - 5x/(5x)²). ``magnitude`` is the largest |z_t|:
    a value that large carries an absolute error of magnitude·eps into every later step (sin of a value
    near 100 is off by ~1e-14 even when the sin itself is small), hence into values and derivatives.
    A value is judged with ``ah.assert_close(scale=magnitude)``, a derivative with
    ``ah.assert_close(scale=scale, condition=magnitude)``.
    """

    value: torch.Tensor
    derivative: list[torch.Tensor] | torch.Tensor  # gradients (one per input) or the output tangent
    scale: float
    magnitude: float


def _magnitude(z: list) -> float:
    return max([1.0] + [torch.as_tensor(t).detach().abs().max().item() for t in z if torch.as_tensor(t).numel()])


def torch_grad(program: adp.Program, cotangent: torch.Tensor | None = None) -> Oracle:
    """Value and gradient (or vᵀJ for a ``cotangent``) of a program by torch.autograd in float64."""
    xs = program.tensors(requires_grad=True)
    z = program.trace(adp.TORCH_OPS, *xs)
    for t in z[len(xs):]:
        if t.requires_grad:
            t.retain_grad()
    out = z[-1]
    seed = torch.ones_like(out) if cotangent is None else cotangent.to(torch.float64)
    out.backward(seed)
    grads = [torch.zeros_like(x) if x.grad is None else x.grad for x in xs]
    scale = max([seed.abs().max().item()] + [t.grad.abs().max().item() for t in z if t.grad is not None and t.numel()])
    return Oracle(out.detach(), grads, scale, _magnitude(z))


def torch_jvp(program: adp.Program, tangents: list[torch.Tensor]) -> Oracle:
    """Value and J·u of a program by torch.autograd in float64, with the double-vjp trick.

    For every variable at once, Z = (z_0, ..., z_T): g(v) = J_Zᵀ v is linear in v, so the derivative of
    ⟨g(v), u⟩ with respect to v is J_Z u, the tangents ż_t of every variable (one double backward).
    """
    xs = program.tensors(requires_grad=True)
    z = program.trace(adp.TORCH_OPS, *xs)
    every = torch.cat([torch.as_tensor(t).reshape(-1) for t in z])
    v = torch.zeros_like(every, requires_grad=True)
    pulled = torch.autograd.grad(every, xs, grad_outputs=v, create_graph=True, allow_unused=True)
    inner = sum((g * u.to(torch.float64)).sum() for g, u in zip(pulled, tangents) if g is not None)
    (dots,) = torch.autograd.grad(inner, v)
    out = z[-1]
    tangent = dots[every.numel() - out.numel():].reshape(out.shape)
    return Oracle(out.detach(), tangent.detach(), dots.abs().max().item(), _magnitude(z))


def size(program: adp.Program) -> int:
    """The reduction length for tolerances: steps times the largest input (terms summed per derivative)."""
    biggest = max((torch.as_tensor(x).numel() for x in program.xs), default=1)
    return (len(program.steps) + 1) * max(biggest, 1) + program.n_inputs
