"""autodiff: d(a/b)/db = +a/b² (sign lost), in both modes."""

from fmspec.candidates.mutants._autodiff import with_primitives
from fmspec.reference.autodiff import primitives

COMPONENT = "autodiff"
CAUGHT_BY = [
    "test_lecture_example_gradient",
    "test_lecture_example_jvp",
    "test_elementary_derivatives_gradient",
    "test_elementary_derivatives_jvp",
    "test_gradient_matches_autograd",
    "test_python_operators_with_floats_gradient",
    "test_python_operators_with_floats_jvp",
    "test_tensor_jvp_matches_autograd",
    "test_tensor_gradient_matches_autograd",
]

DIV = primitives.elementwise("div", primitives.DIV.fn, lambda z, a, b: 1.0 / b, lambda z, a, b: z / b)  # -z / b

autodiff = with_primitives(DIV)
