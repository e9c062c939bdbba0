"""autodiff: forward mode of a product keeps one term of the product rule: d(ab) = da·b (a·db dropped)."""

from fmspec.candidates.mutants._autodiff import with_primitives
from fmspec.reference.autodiff import primitives

COMPONENT = "autodiff"
CAUGHT_BY = [
    "test_lecture_example_jvp",
    "test_jvp_matches_autograd",
    "test_jvp_along_basis_equals_gradient",
    "test_elementary_derivatives_jvp",
    "test_tensor_jvp_matches_autograd",
]

def _mul_jvp(tangents, z, a, b):
    ta, tb = tangents
    return (ta * b).expand(z.shape) if ta is not None else (0.0 * tb * a).expand(z.shape)


MUL = primitives.Primitive("mul", primitives.MUL.fn, primitives.MUL.vjp, _mul_jvp)

autodiff = with_primitives(MUL, modes=("forward",))
