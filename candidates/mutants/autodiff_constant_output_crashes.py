"""autodiff: grad assumes f returns a traced variable; a constant f (or one not using its inputs) crashes."""

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.autodiff import reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_unused_input_gets_zero_gradient"]

_reverse = edit_source(reverse, [
    ("out_value = out.value if isinstance(out, Var) else ops._value(out)\n    if out_value.numel() != 1:",
     "out_value = out.value  # f returned a Var, surely\n    if out_value.numel() != 1:"),
])
autodiff = patch(ref, grad=_reverse.grad)
