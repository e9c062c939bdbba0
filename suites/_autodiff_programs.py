"""The autodiff suite's program language: straight-line programs over a candidate's ``ops``.

A :class:`Program` is a list of steps (:class:`Step`) z_t = h_t(earlier z's) over the inputs z_0..z_{d-1}; its
output is the last step (plus every other sink, so that no step is dead code). A step is written the way
a user writes it: an ``ops.*`` call, a Python operator, a float on either side. ``program(ops, *xs)``
runs it with any ``ops`` (the candidate's, or :data:`TORCH_OPS` for the oracle); ``program.source()`` is
the same program as a Python function, which is how a failing example prints::

    def f(ops, z0, z1):
        z2 = ops.sin(z0)
        z3 = z2 * z1
        z4 = 2.0 - z3
        return z4

Programs are drawn by ``_autodiff_helpers`` (hypothesis) and by ``bench_autodiff`` (a seeded
``random.Random``); both keep to the vocabulary below.
"""

from __future__ import annotations

import functools
import types
from dataclasses import dataclass

import torch

# the vocabulary: the contract's operations, the constants a step may put on either side of an operator,
# the exponents of a power
UNARY = ("neg", "sin", "cos", "exp", "log", "tanh", "sigmoid", "relu")
BINARY = ("add", "sub", "mul", "div")
SCALAR_OPS = BINARY + UNARY + ("pow",)
TENSOR_OPS = ("matmul", "sum", "mean", "reshape", "transpose")
OPERATOR = {"add": "+", "sub": "-", "mul": "*", "div": "/"}
OP_OF = {s: op for op, s in OPERATOR.items()}  # "+" -> "add"
EXPONENTS = (2.0, 3.0, -1.0, 0.5, 1.5, -2.0)
CONSTANTS = (2.0, -3.0, 0.5, 1.5)
LIMIT = 1e3  # no intermediate value larger than this, when drawing (see _autodiff_helpers.Oracle.magnitude)

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
