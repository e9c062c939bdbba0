"""autodiff: reverse sweep overwrites a parent's adjoint instead of accumulating over its children."""

import types

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.autodiff import reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_lecture_example_gradient", "test_gradient_matches_autograd", "test_jvp_along_basis_equals_gradient",
             "test_variable_used_twice_accumulates"]


def backward(out, seed):
    tape = out.tape
    adjoint = [None] * len(tape)
    adjoint[out.index] = seed
    for t in range(out.index, -1, -1):
        node, g = tape[t], adjoint[t]
        if g is None or node.prim is None:
            continue
        for parent, term in zip(node.parents, node.prim.vjp(g, node.value, *node.args, **node.params)):
            if parent is not None:
                adjoint[parent.index] = term  # the last child wins
    return adjoint


def _with(fn, **names):
    return types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__, fn.__defaults__, fn.__closure__)


autodiff = patch(ref, grad=_with(reverse.grad, backward=backward), vjp=_with(reverse.vjp, backward=backward))
