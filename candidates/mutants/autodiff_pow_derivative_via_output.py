"""autodiff: pow's derivative written c·z/a (output over base) for c·a^(c-1): nan at a = 0, in both modes."""

from fmspec.candidates.mutants._autodiff import with_primitives
from fmspec.reference.autodiff import primitives

COMPONENT = "autodiff"
CAUGHT_BY = ["test_gradient_matches_autograd", "test_jvp_matches_autograd"]

POW = primitives.elementwise("pow", primitives.POW.fn, lambda z, a, c: c * z / a)  # c * a ** (c - 1)

autodiff = with_primitives(POW)
