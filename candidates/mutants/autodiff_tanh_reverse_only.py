"""autodiff: reverse mode uses tanh'(x) = 1 - tanh(x) (square forgotten); forward mode is right."""

from fmspec.candidates.mutants._autodiff import with_primitives
from fmspec.reference.autodiff import primitives

COMPONENT = "autodiff"
CAUGHT_BY = ["test_elementary_derivatives_gradient", "test_gradient_matches_autograd", "test_jvp_along_basis_equals_gradient"]

TANH = primitives.Primitive("tanh", primitives.TANH.fn, lambda g, z, a: (g * (1.0 - z),), primitives.TANH.jvp)

autodiff = with_primitives(TANH, modes=("reverse",))
