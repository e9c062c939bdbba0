"""autodiff: forward and reverse mode on straight-line programs (spec: docs/spec/autodiff.md; reference:
reference/autodiff/).

Programs are written ``f(ops, *vars)`` against the candidate's own ``ops``. The oracle runs the same
program on torch tensors through torch.autograd in float64 (jvps by the double-vjp trick).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from fmspec.suites import _autodiff_helpers as adh
from fmspec.suites import _autodiff_programs as adp
from fmspec.suites import asserts as ah
from fmspec.suites import strategies as ss

pytestmark = pytest.mark.component("autodiff")
GRAD, JVP, VJP = "autodiff.grad", "autodiff.jvp", "autodiff.vjp"
SCALAR_OPS = [f"autodiff.ops.{op}" for op in adp.SCALAR_OPS]
TENSOR_OPS = SCALAR_OPS + [f"autodiff.ops.{op}" for op in adp.TENSOR_OPS]


def grad(candidate, f, *xs):
    return ah.call(candidate.autodiff.grad, GRAD, f, *xs)


def jvp(candidate, f, xs, tangents):
    return ah.call(candidate.autodiff.jvp, JVP, f, list(xs), list(tangents))


def check_value(actual, oracle: adh.Oracle, program: adp.Program, *, where: str) -> None:
    """The program's value (a float or a tensor, flattened), its error relative to the largest intermediate
    value (see ``adh.Oracle``)."""
    __tracebackhide__ = True
    ah.assert_close(ah.flat(actual, name="value", where=where), oracle.value.reshape(-1), dtype=torch.float64,
                    n=adh.size(program), scale=oracle.magnitude, name="value", where=where)


def check_derivative(actual, expected: torch.Tensor, oracle: adh.Oracle, program: adp.Program, *,
                     name: str = "grad", where: str) -> None:
    """A derivative (gradients flattened, or a tangent), its error relative to the derivative scale, the
    allowance multiplied by the largest intermediate value (see ``adh.Oracle``)."""
    __tracebackhide__ = True
    if isinstance(actual, torch.Tensor):
        ah.assert_tensor(actual, tuple(expected.shape), name=name, where=where)
    ah.assert_close(ah.flat(actual, name=name, where=where), expected.reshape(-1), dtype=torch.float64,
                    n=adh.size(program), scale=oracle.scale, condition=oracle.magnitude, name=name, where=where)


# --------------------------------------------------------------------------------- the worked example
def lecture_program(ops, w1, w2):
    """The lecture's straight-line program for f(w1, w2), step by step."""
    z1 = w1 / w2
    z2 = ops.sin(2 * math.pi * z1)
    z3 = ops.exp(2 * w2)
    z4 = 3 * z1 - z3
    z5 = z2 + z4
    z6 = z4 * z5
    return z6


def lecture_formula(ops, w1, w2):
    """f(w1, w2) = (sin(2π w1/w2) + 3 w1/w2 - exp(2 w2)) · (3 w1/w2 - exp(2 w2)), as one expression."""
    return (ops.sin(2 * math.pi * w1 / w2) + 3 * w1 / w2 - ops.exp(2 * w2)) * (3 * w1 / w2 - ops.exp(2 * w2))


def lecture_closed_form(w1: float, w2: float) -> tuple[float, tuple[float, float]]:
    """Value and gradient by hand: with r = w1/w2 and e = exp(2 w2), z4 = 3r - e, z5 = sin(2πr) + z4,

    df/dr = 3 z5 + z4 (2π cos(2πr) + 3),  df/de = -(z5 + z4),
    df/dw1 = df/dr / w2,  df/dw2 = df/dr · (-w1/w2²) + df/de · 2e.
    """
    r, e = w1 / w2, math.exp(2 * w2)
    z4 = 3 * r - e
    z5 = math.sin(2 * math.pi * r) + z4
    df_dr = 3 * z5 + z4 * (2 * math.pi * math.cos(2 * math.pi * r) + 3)
    df_de = -(z5 + z4)
    return z4 * z5, (df_dr / w2, df_dr * (-w1 / w2**2) + df_de * 2 * e)


LN2 = math.log(2.0)
# The lecture point w2 = ln2/2, w1 = w2/4: z1..z6 = 1/4, 1, 2, -5/4, -1/4, 5/16, and the gradient worked
# out step by step in reference/autodiff/__init__.py. Elsewhere the hand derivation above.
POINTS = [
    pytest.param((LN2 / 8, LN2 / 2), (5 / 16, (-9 / LN2, 6 + 9 / (4 * LN2))), id="lecture-point"),
    pytest.param((1.5, 0.5), lecture_closed_form(1.5, 0.5), id="w1.5-0.5"),
    pytest.param((-0.7, 1.3), lecture_closed_form(-0.7, 1.3), id="w-0.7-1.3"),
]
FORMS = [pytest.param(lecture_program, id="z1..z6"), pytest.param(lecture_formula, id="formula")]
LECTURE_NEEDS = ("autodiff.ops.sin", "autodiff.ops.exp")


@pytest.mark.smoke
@pytest.mark.needs(GRAD, *LECTURE_NEEDS)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("point, expected", POINTS)
def test_lecture_example_gradient(candidate, form, point, expected):
    """Reverse mode on the lecture's f(w1, w2): value and gradient equal the hand derivation.

    At the lecture point: f = 5/16 and ∇f = (-9/ln 2, 6 + 9/(4 ln 2)); z1 and w2 feed two steps each, so a
    gradient that overwrites instead of accumulating is wrong here.
    """
    value, expected = expected
    out = grad(candidate, form, *point)
    where = ah.snippet(GRAD, form.__name__, *point)
    got = ah.flat([out[0], *out[1]], name="(value, grads)", where=where)
    ah.assert_close(got, torch.tensor([value, *expected], dtype=torch.float64), dtype=torch.float64, n=6,
                    name="(value, df/dw1, df/dw2)", where=where)


@pytest.mark.smoke
@pytest.mark.needs(JVP, *LECTURE_NEEDS)
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("point, expected", POINTS)
def test_lecture_example_jvp(candidate, form, point, expected):
    """Forward mode on the lecture's f(w1, w2): jvp along e1, e2 and (1, -2) equals the hand derivation."""
    value, (g1, g2) = expected
    for u in ((1.0, 0.0), (0.0, 1.0), (1.0, -2.0)):
        where = ah.snippet(JVP, form.__name__, point, u)
        out = jvp(candidate, form, point, u)
        ah.assert_close(ah.flat(list(out), name="(value, tangent)", where=where),
                        torch.tensor([value, u[0] * g1 + u[1] * g2], dtype=torch.float64), dtype=torch.float64,
                        n=6, name="(value, df·u)", where=where)


# ------------------------------------------------------------------------ random straight-line programs
S = adp.Step
# Programs that reveal the usual bugs, given to the properties as explicit examples (random draws reach
# them rarely or never):
TWICE = adp.Program((-1.5,), (S("binop", "*", (0, 0)), S("binop", "+", (1, 0))))  # z0·z0 + z0: z0 used three times
AT_ZERO = adp.Program((0.0,), (S("call", "pow", (0,), 2.0), S("rconst", "**", (0,), 3.0)))  # pow at its edge a = 0
NEGATIVE_BASE = adp.Program((-1.2, 0.7), (S("rconst", "**", (0,), -2.0), S("call", "relu", (0,)),
                                          S("binop", "*", (3, 1))))  # (-1.2)^-2: an integer power of a negative base
RSUB = adp.Program((0.5,), (S("lconst", "-", (0,), 2.0),))  # 2.0 - z0: a float on the left
UNUSED_INPUT = adp.Program((0.5, -1.2), (S("call", "sin", (0,)),))  # z1 unused
# tensor programs: size-1 axes stretched by broadcasting on both sides, and a centering with keepdim
BOTH_BROADCAST = adp.Program((ss.randn((3, 1), 0), ss.randn((1, 4), 1)), (S("binop", "*", (0, 1)),), reduce="sum")
CENTERED = adp.Program((ss.randn((2, 3), 2),), (S("call", "mean", (0,), kwargs=(("dim", -1), ("keepdim", True))),
                                              S("binop", "-", (0, 1)), S("binop", "*", (2, 2))), reduce="mean")
# sigmoid(x) / (2.0 - tanh(y)), y broadcast over x's rows: sigmoid, a float on the left, a division by a tensor
QUOTIENT = adp.Program((ss.randn((2, 3), 3), ss.randn((3,), 4)), (S("call", "sigmoid", (0,)), S("call", "tanh", (1,)),
                                                                  S("lconst", "-", (3,), 2.0), S("binop", "/", (2, 4))))


@pytest.mark.smoke
@pytest.mark.needs(GRAD, *SCALAR_OPS)
@given(program=adh.scalar_programs())
@example(program=TWICE)
@example(program=AT_ZERO)
@example(program=NEGATIVE_BASE)
def test_gradient_matches_autograd(candidate, program):
    """Random DAG programs (shared sub-expressions, repeated variables, deep chains, wide fan-in):
    reverse mode equals torch.autograd in float64, value and every partial."""
    oracle = adh.torch_grad(program)
    where = f"autodiff.grad(f, *xs) for{program!r}"
    out = grad(candidate, program, *program.xs)
    check_value(out[0], oracle, program, where=where)
    check_derivative(list(out[1]), ah.flat(oracle.derivative), oracle, program, where=where)


@pytest.mark.needs(JVP, *SCALAR_OPS)
@given(program=adh.scalar_programs())
@example(program=RSUB)
@example(program=TWICE)
@example(program=AT_ZERO)
@example(program=NEGATIVE_BASE)
def test_jvp_matches_autograd(candidate, program):
    """Random DAG programs: forward mode along a random direction u equals J·u from torch.autograd in float64."""
    u = adh.directions(program)
    oracle = adh.torch_jvp(program, u)
    tangents = [t.item() for t in u]
    where = f"autodiff.jvp(f, xs, {[round(t, 4) for t in tangents]}) for{program!r}"
    out = jvp(candidate, program, program.xs, tangents)
    check_value(out[0], oracle, program, where=where)
    check_derivative(out[1], oracle.derivative, oracle, program, name="tangent", where=where)


@pytest.mark.needs(GRAD, JVP, *SCALAR_OPS)
@given(program=adh.scalar_programs())
@example(program=UNUSED_INPUT)
@example(program=TWICE)
def test_jvp_along_basis_equals_gradient(candidate, program):
    """Consistency of the two modes: jvp along e_i equals the i-th partial from grad."""
    _, g = grad(candidate, program, *program.xs)
    g = ah.flat(list(g), name="grads")
    oracle = adh.torch_grad(program)  # for the scales only
    for i in range(program.n_inputs):
        e = [float(i == j) for j in range(program.n_inputs)]
        where = f"autodiff.jvp(f, xs, {e}) against autodiff.grad(f, *xs)[1][{i}] for{program!r}"
        _, t = jvp(candidate, program, program.xs, e)
        check_derivative(t, g[i : i + 1], oracle, program, name=f"jvp along e{i}", where=where)


# ------------------------------------------------------------------------------- targeted scalar checks
def _square_shared(ops, x):
    s = ops.sin(x)
    return s * s  # one node, two uses


def _product_reused(ops, x, y):
    u = x * y
    return u + u * x  # u used twice, x used three times


SHARED = [
    pytest.param(lambda ops, x: x * x, (1.7,), lambda x: (2 * x,), id="x*x"),
    pytest.param(lambda ops, x: x + x + x, (0.3,), lambda x: (3.0,), id="x+x+x"),
    pytest.param(_square_shared, (0.9,), lambda x: (2 * math.sin(x) * math.cos(x),), id="sin(x)^2-shared",
                 marks=pytest.mark.needs("autodiff.ops.sin")),
    pytest.param(_product_reused, (1.2, -0.8), lambda x, y: (y + 2 * x * y, x + x * x), id="(xy)+(xy)x"),
]


@pytest.mark.smoke
@pytest.mark.needs(GRAD)
@pytest.mark.parametrize("f, xs, expected", SHARED)
def test_variable_used_twice_accumulates(candidate, f, xs, expected):
    """A variable with several children gets the sum of their contributions (the classic overwrite bug)."""
    where = ah.snippet(GRAD, f.__name__, *xs)
    _, g = grad(candidate, f, *xs)
    ah.assert_close(ah.flat(list(g), name="grads", where=where), torch.tensor(expected(*xs), dtype=torch.float64),
                    n=4, name="grads", where=where)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# name, arity, f(x) or f(a, b), derivative(s) in closed form, points inside the domain
UNARY_CASES = {
    "neg": (lambda x: -x, lambda x: -1.0, (-1.3, 0.4, 2.1)),
    "sin": (math.sin, math.cos, (-1.3, 0.4, 2.1)),
    "cos": (math.cos, lambda x: -math.sin(x), (-1.3, 0.4, 2.1)),
    "exp": (math.exp, math.exp, (-1.3, 0.4, 2.1)),
    "log": (math.log, lambda x: 1 / x, (0.4, 2.1, 3.7)),
    "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2, (-1.3, 0.4, 2.1)),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1 - _sigmoid(x)), (-1.3, 0.4, 2.1)),
    "relu": (lambda x: max(x, 0.0), lambda x: float(x > 0), (-1.3, 0.4, 2.1)),
}
BINARY_CASES = {
    "add": (lambda a, b: a + b, lambda a, b: (1.0, 1.0)),
    "sub": (lambda a, b: a - b, lambda a, b: (1.0, -1.0)),
    "mul": (lambda a, b: a * b, lambda a, b: (b, a)),
    "div": (lambda a, b: a / b, lambda a, b: (1 / b, -a / b**2)),
}
BINARY_POINTS = ((1.5, -0.7), (-2.2, 0.9), (0.3, 3.1))
EXPONENTS = (2.0, 3.0, -1.0, 0.5, -2.5)


def _op_cases():
    for name, (fn, d, points) in UNARY_CASES.items():
        yield pytest.param(name, lambda ops, x, _n=name: getattr(ops, _n)(x), fn, lambda x, _d=d: (_d(x),), points,
                           id=name, marks=pytest.mark.needs(f"autodiff.ops.{name}"))
    for name, (fn, d) in BINARY_CASES.items():
        yield pytest.param(name, lambda ops, a, b, _n=name: getattr(ops, _n)(a, b), fn, d, BINARY_POINTS,
                           id=name, marks=pytest.mark.needs(f"autodiff.ops.{name}"))
    for c in EXPONENTS:
        yield pytest.param("pow", lambda ops, x, _c=c: ops.pow(x, _c), lambda x, _c=c: x**_c,
                           lambda x, _c=c: (_c * x ** (_c - 1),), (0.4, 2.1), id=f"pow{c:g}",
                           marks=pytest.mark.needs("autodiff.ops.pow"))


@pytest.mark.needs(GRAD)
@pytest.mark.parametrize("name, f, fn, derivative, points", list(_op_cases()))
def test_elementary_derivatives_gradient(candidate, name, f, fn, derivative, points):
    """Each operation alone, in reverse mode: value h(x) and every partial derivative equal the closed form."""
    for x in points:
        xs = x if isinstance(x, tuple) else (x,)
        expected = torch.tensor([fn(*xs), *derivative(*xs)], dtype=torch.float64)
        where = ah.snippet(GRAD, f"lambda ops, *x: ops.{name}(*x)", *xs)
        value, g = grad(candidate, f, *xs)
        ah.assert_close(ah.flat([value, *g], name="(value, grads)", where=where), expected, n=2,
                        name=f"{name}: (value, partials)", where=where)


@pytest.mark.needs(JVP)
@pytest.mark.parametrize("name, f, fn, derivative, points", list(_op_cases()))
def test_elementary_derivatives_jvp(candidate, name, f, fn, derivative, points):
    """Each operation alone, in forward mode: jvp along e_i gives the value h(x) and the i-th partial."""
    for x in points:
        xs = x if isinstance(x, tuple) else (x,)
        expected = torch.tensor([fn(*xs), *derivative(*xs)], dtype=torch.float64)
        for i in range(len(xs)):
            e = [float(i == j) for j in range(len(xs))]
            where = ah.snippet(JVP, f"lambda ops, *x: ops.{name}(*x)", xs, e)
            value, t = jvp(candidate, f, xs, e)
            ah.assert_close(ah.flat([value, t], name="(value, tangent)", where=where), expected[[0, 1 + i]], n=2,
                            name=f"{name}: (value, partial {i})", where=where)


OPERATOR_CASES = [
    pytest.param(lambda ops, x: 2.0 * x, lambda x: (2 * x, 2.0), id="2*x"),
    pytest.param(lambda ops, x: x * 2.0, lambda x: (2 * x, 2.0), id="x*2"),
    pytest.param(lambda ops, x: 2.0 + x, lambda x: (2 + x, 1.0), id="2+x"),
    pytest.param(lambda ops, x: x + 2.0, lambda x: (x + 2, 1.0), id="x+2"),
    pytest.param(lambda ops, x: 2.0 - x, lambda x: (2 - x, -1.0), id="2-x"),
    pytest.param(lambda ops, x: x - 2.0, lambda x: (x - 2, 1.0), id="x-2"),
    pytest.param(lambda ops, x: 2.0 / x, lambda x: (2 / x, -2 / x**2), id="2/x"),
    pytest.param(lambda ops, x: x / 2.0, lambda x: (x / 2, 0.5), id="x/2"),
    pytest.param(lambda ops, x: -x, lambda x: (-x, -1.0), id="-x"),
    pytest.param(lambda ops, x: x**3, lambda x: (x**3, 3 * x**2), id="x**3"),
    pytest.param(lambda ops, x: x**0.5, lambda x: (x**0.5, 0.5 * x**-0.5), id="x**0.5"),
    pytest.param(lambda ops, x: 3 * x * x - 1 / x, lambda x: (3 * x * x - 1 / x, 6 * x + 1 / x**2), id="3x^2-1/x"),
]


@pytest.mark.smoke
@pytest.mark.needs(GRAD)
@pytest.mark.parametrize("f, expected", OPERATOR_CASES)
@pytest.mark.parametrize("x", [0.6, 2.5])
def test_python_operators_with_floats_gradient(candidate, f, expected, x):
    """Variables support + - * / ** and unary -, with a float on either side, in reverse mode."""
    want = torch.tensor(expected(x), dtype=torch.float64)
    where = ah.snippet(GRAD, "f", x)
    value, (g,) = grad(candidate, f, x)
    ah.assert_close(ah.flat([value, g], name="(value, grad)", where=where), want, n=4, name="(value, df/dx)",
                    where=where)


@pytest.mark.needs(JVP)
@pytest.mark.parametrize("f, expected", OPERATOR_CASES)
@pytest.mark.parametrize("x", [0.6, 2.5])
def test_python_operators_with_floats_jvp(candidate, f, expected, x):
    """Variables support + - * / ** and unary -, with a float on either side, in forward mode."""
    want = torch.tensor(expected(x), dtype=torch.float64)
    where = ah.snippet(JVP, "f", [x], [1.0])
    ah.assert_close(ah.flat(list(jvp(candidate, f, [x], [1.0])), name="(value, tangent)", where=where), want, n=4,
                    name="(value, df/dx)", where=where)


UNUSED = [  # f, xs, (value, df/dx_1, ...)
    pytest.param(lambda ops, x, y: ops.sin(x), (0.5, 2.0), (math.sin(0.5), math.cos(0.5), 0.0), id="sin(x)-y-unused",
                 marks=pytest.mark.needs("autodiff.ops.sin")),
    pytest.param(lambda ops, x, y: y, (0.5, 2.0), (2.0, 0.0, 1.0), id="f=y"),
    pytest.param(lambda ops, x: 3.0, (0.5,), (3.0, 0.0), id="constant"),
]


@pytest.mark.needs(GRAD)
@pytest.mark.parametrize("f, xs, expected", UNUSED)
def test_unused_input_gets_zero_gradient(candidate, f, xs, expected):
    """An input z_T does not depend on gets 0.0 in reverse mode; so does every input of a constant f."""
    want = torch.tensor(expected, dtype=torch.float64)
    where = ah.snippet(GRAD, "f", *xs)
    value, g = grad(candidate, f, *xs)
    ah.assert_close(ah.flat([value, *g], name="(value, grads)", where=where), want, n=2, name="(value, grads)",
                    where=where)


@pytest.mark.needs(JVP)
@pytest.mark.parametrize("f, xs, expected", UNUSED)
def test_unused_input_gets_zero_jvp(candidate, f, xs, expected):
    """Forward mode along an input z_T does not depend on gives a 0.0 tangent; so does any direction for a
    constant f."""
    want = torch.tensor(expected, dtype=torch.float64)
    for i in range(len(xs)):
        e = [float(i == j) for j in range(len(xs))]
        where = ah.snippet(JVP, "f", xs, e)
        ah.assert_close(ah.flat(list(jvp(candidate, f, xs, e)), name="(value, tangent)", where=where),
                        want[[0, 1 + i]], n=2, name="(value, tangent)", where=where)


_OTHER = st.floats(-2.0, 2.0).map(lambda v: round(v, 3))


def _elsewhere(call) -> None:
    """A call at another point, which may leave a domain: what it does is not the caller's concern."""
    try:
        call()
    except (ValueError, ArithmeticError):
        pass


@pytest.mark.needs(GRAD, *SCALAR_OPS)
@given(program=adh.scalar_programs(max_steps=8), other=_OTHER)
@example(program=adp.Program((1.5,), (S("call", "log", (0,)),)), other=-1.0)  # the call between raises
def test_same_gradient_when_called_twice(candidate, program, other):
    """No state is kept between calls: grad(f, a), then grad at another point, then grad(f, a) again agree."""
    first = ah.flat([(o := grad(candidate, program, *program.xs))[0], *o[1]])
    _elsewhere(lambda: grad(candidate, program, *[other] * program.n_inputs))
    again = ah.flat([(o := grad(candidate, program, *program.xs))[0], *o[1]])
    ah.assert_equal(again, first, name="grad, third call", where=f"autodiff.grad(f, *xs) twice for{program!r}")


@pytest.mark.needs(JVP, *SCALAR_OPS)
@given(program=adh.scalar_programs(max_steps=8), other=_OTHER)
@example(program=adp.Program((1.5,), (S("call", "log", (0,)),)), other=-1.0)  # the call between raises
def test_same_jvp_when_called_twice(candidate, program, other):
    """No state is kept between calls: jvp(f, a, u), then jvp at another point, then jvp(f, a, u) again agree."""
    u = [1.0] * program.n_inputs
    first = ah.flat(list(jvp(candidate, program, program.xs, u)))
    _elsewhere(lambda: jvp(candidate, program, [other] * program.n_inputs, u))
    again = ah.flat(list(jvp(candidate, program, program.xs, u)))
    ah.assert_equal(again, first, name="jvp, third call", where=f"autodiff.jvp(f, xs, {u}) twice for{program!r}")


# --------------------------------------------------------------------------------------- bad input
DOMAIN_CASES = [
    pytest.param(lambda ops, x: ops.log(x), -1.0, id="log(-1)", marks=pytest.mark.needs("autodiff.ops.log")),
    pytest.param(lambda ops, x: ops.log(x), 0.0, id="log(0)", marks=pytest.mark.needs("autodiff.ops.log")),
    pytest.param(lambda ops, x: 1.0 / x, 0.0, id="1/0"),
    pytest.param(lambda ops, x: ops.div(x, x - x), 2.0, id="div(x, x-x)", marks=pytest.mark.needs("autodiff.ops.div")),
    pytest.param(lambda ops, x: ops.pow(x, 0.5), -4.0, id="pow(-4, 0.5)", marks=pytest.mark.needs("autodiff.ops.pow")),
]


def _outcome(fn) -> str:
    """'error' (ValueError or ArithmeticError), 'nonfinite' (inf or nan in the result) or 'finite'."""
    try:
        out = fn()
    except (ValueError, ArithmeticError):
        return "error"
    values = ah.flat([out[0], *(out[1] if isinstance(out[1], (list, tuple)) else [out[1]])])
    return "finite" if bool(torch.isfinite(values).all()) else "nonfinite"


@pytest.mark.needs(GRAD)
@pytest.mark.parametrize("f, x", DOMAIN_CASES)
def test_out_of_domain_gradient_is_not_finite(candidate, f, x):
    """Outside an operation's domain, grad raises a clear error (ValueError, ZeroDivisionError) or returns
    inf/nan: never a finite number."""
    outcome = _outcome(lambda: candidate.autodiff.grad(f, x))
    assert outcome != "finite", f"a finite result outside the domain [{ah.snippet(GRAD, 'f', x)}]"


@pytest.mark.needs(JVP)
@pytest.mark.parametrize("f, x", DOMAIN_CASES)
def test_out_of_domain_jvp_is_not_finite(candidate, f, x):
    """Outside an operation's domain, jvp raises a clear error (ValueError, ZeroDivisionError) or returns
    inf/nan: never a finite number."""
    outcome = _outcome(lambda: candidate.autodiff.jvp(f, [x], [1.0]))
    assert outcome != "finite", f"a finite result outside the domain [{ah.snippet(JVP, 'f', [x], [1.0])}]"


@pytest.mark.needs(GRAD, JVP)
@pytest.mark.parametrize("f, x", DOMAIN_CASES)
def test_out_of_domain_is_consistent_between_modes(candidate, f, x):
    """Outside an operation's domain, grad and jvp both raise or both return inf/nan: never one mode
    raising and the other not (each mode alone is checked above)."""
    in_reverse = _outcome(lambda: candidate.autodiff.grad(f, x))
    in_forward = _outcome(lambda: candidate.autodiff.jvp(f, [x], [1.0]))
    where = f"{ah.snippet(GRAD, 'f', x)} and {ah.snippet(JVP, 'f', [x], [1.0])}"
    assert in_reverse == in_forward, f"the modes disagree: grad gives {in_reverse}, jvp gives {in_forward} [{where}]"


def _pair(ops, x, y):
    return (x, y)


def _product(ops, x, y):
    return x * y


# (call(autodiff), exception, argument the message names): the argument as a whole word
BAD_GRAD_CALLS = [
    pytest.param(lambda ad: ad.grad(_pair, 1.0, 2.0), TypeError, r"\bf\b", id="f-returns-a-pair"),
    pytest.param(lambda ad: ad.grad(_product, "1.0", 2.0), TypeError, r"\bxs\b", id="xs-a-string"),
    pytest.param(lambda ad: ad.grad(_product, 1.0, None), TypeError, r"\bxs\b", id="xs-none"),
]
BAD_JVP_CALLS = [
    pytest.param(lambda ad: ad.jvp(_product, [1.0, 2.0], [1.0]), ValueError, r"\btangents\b", id="too-few-tangents"),
    pytest.param(lambda ad: ad.jvp(_product, [1.0, 2.0], [1.0, 0.0, 0.0]), ValueError, r"\btangents\b",
                 id="too-many-tangents"),
]


@pytest.mark.needs(GRAD)
@pytest.mark.parametrize("call, error, argument", BAD_GRAD_CALLS)
def test_bad_grad_arguments_raise(candidate, call, error, argument):
    """grad of a function returning a pair, or of inputs that are not numbers: TypeError naming f or xs."""
    with pytest.raises(error, match=argument):
        call(candidate.autodiff)


@pytest.mark.needs(JVP)
@pytest.mark.parametrize("call, error, argument", BAD_JVP_CALLS)
def test_bad_jvp_arguments_raise(candidate, call, error, argument):
    """jvp with as many tangents as inputs only: ValueError naming tangents."""
    with pytest.raises(error, match=argument):
        call(candidate.autodiff)


# ---------------------------------------------------------------------------------------- tensor tier
@pytest.mark.smoke
@pytest.mark.capability("tensors")
@pytest.mark.needs(GRAD, *TENSOR_OPS)
@given(program=adh.tensor_programs())
@example(program=adp.Program((ss.randn((2, 3), 0),), (S("call", "sigmoid", (0,)),), reduce="sum"))
@example(program=BOTH_BROADCAST)
@example(program=CENTERED)
@example(program=dataclasses.replace(QUOTIENT, reduce="sum"))
def test_tensor_gradient_matches_autograd(candidate, program):
    """Random tensor programs (broadcasting, matmul, sum/mean over a dim, reshape, transpose) summed to a
    scalar: the gradient has each input's shape and equals torch.autograd in float64."""
    oracle = adh.torch_grad(program)
    where = f"autodiff.grad(f, *xs) for{program!r}"
    out = grad(candidate, program, *program.tensors())
    check_value(out[0], oracle, program, where=where)
    ah.assert_equal(len(out[1]), program.n_inputs, name="len(grads)", where=where)
    for i, (g, x) in enumerate(zip(out[1], program.tensors())):
        ah.assert_tensor(g, tuple(x.shape), name=f"grads[{i}]", where=where)
    check_derivative(list(out[1]), ah.flat(oracle.derivative), oracle, program, where=where)


@pytest.mark.capability("tensors")
@pytest.mark.needs(JVP, *TENSOR_OPS)
@given(program=adh.tensor_programs(reduce=False))
@example(program=dataclasses.replace(BOTH_BROADCAST, reduce=None))
@example(program=dataclasses.replace(CENTERED, reduce=None))
@example(program=QUOTIENT)
def test_tensor_jvp_matches_autograd(candidate, program):
    """Random tensor programs, tensor-valued: J·u has the output's shape and equals torch.autograd's."""
    u = adh.directions(program)
    oracle = adh.torch_jvp(program, u)
    where = f"autodiff.jvp(f, xs, u) for{program!r}"
    out_value, tangent = jvp(candidate, program, program.tensors(), u)
    ah.assert_tensor(out_value, tuple(oracle.value.shape), name="value", where=where)
    ah.assert_tensor(tangent, tuple(oracle.value.shape), name="tangent", where=where)
    check_value(out_value, oracle, program, where=where)
    check_derivative(tangent, oracle.derivative, oracle, program, name="tangent", where=where)


def _cotangent(program: adp.Program) -> torch.Tensor:
    shape = tuple(program(adp.TORCH_OPS, *program.tensors()).shape)
    return ss.randn(shape, program.seed + 7)


@pytest.mark.capability("tensors")
@pytest.mark.needs(VJP, *TENSOR_OPS)
@given(program=adh.tensor_programs(reduce=False))
@example(program=dataclasses.replace(BOTH_BROADCAST, reduce=None))
@example(program=dataclasses.replace(CENTERED, reduce=None))
@example(program=QUOTIENT)
def test_vjp_matches_autograd(candidate, program):
    """Random tensor programs, tensor-valued: vᵀJ for a random cotangent v equals torch.autograd."""
    v = _cotangent(program)
    oracle = adh.torch_grad(program, v)
    where = f"autodiff.vjp(f, xs, v) for{program!r}"
    out_value, grads = ah.call(candidate.autodiff.vjp, VJP, program, program.tensors(), v)
    ah.assert_tensor(out_value, tuple(oracle.value.shape), name="value", where=where)
    check_value(out_value, oracle, program, where=where)
    for i, (g, x) in enumerate(zip(grads, program.tensors())):
        ah.assert_tensor(g, tuple(x.shape), name=f"grads[{i}]", where=where)
    check_derivative(list(grads), ah.flat(oracle.derivative), oracle, program, where=where)


@pytest.mark.capability("tensors")
@pytest.mark.needs(JVP, VJP, *TENSOR_OPS)
@given(program=adh.tensor_programs(reduce=False))
@example(program=dataclasses.replace(BOTH_BROADCAST, reduce=None))
@example(program=dataclasses.replace(CENTERED, reduce=None))
@example(program=QUOTIENT)
def test_jvp_vjp_adjoint(candidate, program):
    """The two modes are adjoint: ⟨J u, v⟩ = ⟨u, Jᵀ v⟩ for random u and v (no oracle involved)."""
    u, v = adh.directions(program), _cotangent(program)
    where = f"autodiff.jvp(f, xs, u) against autodiff.vjp(f, xs, v) for{program!r}"
    _, ju = jvp(candidate, program, program.tensors(), u)
    _, jtv = ah.call(candidate.autodiff.vjp, VJP, program, program.tensors(), v)
    ah.assert_tensor(ju, tuple(v.shape), name="J u", where=where)
    left = ju.to(torch.float64) * v
    right = torch.cat([(a * b.to(torch.float64)).reshape(-1) for a, b in zip(u, jtv)])
    # the size of the terms summed: those of the two inner products, and the program's own tangents and
    # adjoints, which can cancel inside J u and Jᵀ v far below themselves (x·y − y·x)
    back = adh.torch_grad(program, v)
    scale = max(left.abs().sum().item(), right.abs().sum().item(),
                adh.torch_jvp(program, u).scale * v.abs().sum().item(),
                back.scale * sum(t.abs().sum().item() for t in u))
    ah.assert_close(left.sum().reshape(1), right.sum().reshape(1), n=adh.size(program), scale=scale,
                    condition=back.magnitude, name="⟨J u, v⟩ vs ⟨u, Jᵀ v⟩", where=where)


BROADCASTS = [((3, 1), (4,)), ((2, 3), (1, 3)), ((2, 3), ()), ((5,), (2, 1)), ((1,), (3, 2))]


@pytest.mark.smoke
@pytest.mark.capability("tensors")
@pytest.mark.needs(GRAD, "autodiff.ops.sum", "autodiff.ops.sin")
@pytest.mark.parametrize("shapes", BROADCASTS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_broadcast_gradient_has_input_shape(candidate, shapes):
    """z = sum(sin(x) * y + y) with x, y of broadcasting shapes: each gradient has its input's shape,
    summed over the broadcast dimensions."""
    x, y = ss.randn(shapes[0], 1), ss.randn(shapes[1], 2)
    f = lambda ops, x, y: ops.sum(ops.sin(x) * y + y)  # noqa: E731
    xt, yt = x.clone().requires_grad_(), y.clone().requires_grad_()
    expected = torch.autograd.grad((torch.sin(xt) * yt + yt).sum(), (xt, yt))
    # each gradient sums terms over the broadcast dimensions: cos(x)·y for x, which may cancel, and
    # sin(x) + 1 for y; the same sums over the terms' absolute values are their scale
    xa, ya = x.clone().requires_grad_(), y.clone().requires_grad_()
    abs_y_summed, terms_y = torch.autograd.grad((xa * y.abs() + (x.sin().abs() + 1) * ya).sum(), (xa, ya))
    scales = [(x.cos().abs() * abs_y_summed).max().item(), terms_y.max().item()]
    where = ah.snippet(GRAD, "lambda ops, x, y: ops.sum(ops.sin(x) * y + y)", x, y)
    _, g = grad(candidate, f, x, y)
    for i, (gi, ei) in enumerate(zip(g, expected)):
        ah.assert_close(gi, ei, n=12, scale=scales[i], name=f"grads[{i}]", where=where)


@pytest.mark.capability("tensors")
@pytest.mark.needs(GRAD, "autodiff.ops.sum", "autodiff.ops.matmul")
@pytest.mark.parametrize("m, k, n", [(2, 3, 4), (1, 5, 2), (3, 3, 3)], ids=lambda v: str(v))
def test_matmul_gradient_is_transposed_product(candidate, m, k, n):
    """f = sum((A @ B) * C): df/dA = C Bᵀ and df/dB = Aᵀ C (closed form), for square and non-square shapes."""
    a, b, c = ss.randn((m, k), 1), ss.randn((k, n), 2), ss.randn((m, n), 3)
    f = lambda ops, a, b: ops.sum(ops.matmul(a, b) * c)  # noqa: E731
    where = ah.snippet(GRAD, "lambda ops, a, b: ops.sum(ops.matmul(a, b) * c)", a, b)
    value, (ga, gb) = grad(candidate, f, a, b)
    # sums of products of either sign: judged against the sums of their absolute values
    ah.assert_close(ga, c @ b.T, n=k * n, scale=(c.abs() @ b.abs().T).max().item(), name="df/dA", where=where)
    ah.assert_close(gb, a.T @ c, n=m * n, scale=(a.abs().T @ c.abs()).max().item(), name="df/dB", where=where)


@pytest.mark.capability("tensors")
@pytest.mark.needs(GRAD, "autodiff.ops.sin")
def test_non_scalar_output_raises(candidate):
    """grad of a function that returns a non-scalar tensor raises ValueError naming f (vjp is for those)."""
    with pytest.raises(ValueError, match=r"\bf\b"):
        candidate.autodiff.grad(lambda ops, x: ops.sin(x) * 2.0, ss.randn((3,), 0))
