"""autodiff: reverse sweep overwrites a parent's adjoint instead of accumulating over its children."""

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.autodiff import reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_lecture_example_gradient", "test_gradient_matches_autograd", "test_jvp_along_basis_equals_gradient",
             "test_variable_used_twice_accumulates"]

_reverse = edit_source(reverse, [("adjoint[parent.index] = term if prev is None else prev + term",
                                  "adjoint[parent.index] = term  # the last child wins")])
autodiff = patch(ref, grad=_reverse.grad, vjp=_reverse.vjp)
