"""autodiff: gradients accumulate in per-input slots that are never zeroed between calls (no zero_grad)."""

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch

COMPONENT = "autodiff"
CAUGHT_BY = ["test_same_gradient_when_called_twice"]

_SLOTS: dict = {}  # input position -> accumulated gradient, kept across calls


def grad(f, *xs):
    value, grads = ref.grad(f, *xs)
    out = []
    for i, g in enumerate(grads):
        _SLOTS[i] = g if i not in _SLOTS or not isinstance(g, type(_SLOTS[i])) else _SLOTS[i] + g
        out.append(_SLOTS[i])
    return value, tuple(out)


autodiff = patch(ref, grad=grad)
