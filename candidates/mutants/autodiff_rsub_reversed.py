"""autodiff: the reflected subtraction c - x computes x - c (__rsub__ with its operands swapped)."""

from fmspec.candidates.mutants._autodiff import with_tracers
from fmspec.reference.autodiff import forward, ops, reverse

COMPONENT = "autodiff"
CAUGHT_BY = [
    "test_python_operators_with_floats_gradient",
    "test_python_operators_with_floats_jvp",
    "test_gradient_matches_autograd",
    "test_jvp_matches_autograd",
    "test_tensor_jvp_matches_autograd",
    "test_tensor_gradient_matches_autograd",
]

class Var(reverse.Var):
    def __rsub__(self, other):
        return ops.sub(self, other)


class Dual(forward.Dual):
    def __rsub__(self, other):
        return ops.sub(self, other)


autodiff = with_tracers(var=Var, dual=Dual)
