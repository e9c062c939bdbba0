"""autodiff: jvp assumes f returns a traced variable; a constant f (one not using its inputs) crashes."""

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.autodiff import forward

COMPONENT = "autodiff"
CAUGHT_BY = ["test_unused_input_gets_zero_jvp"]

_forward = edit_source(forward, [
    ("    if isinstance(out, Dual):\n        value, tangent = out.value, out.tangent\n",
     "    if True:  # f returned a Dual, surely\n        value, tangent = out.value, out.tangent\n"),
])
autodiff = patch(ref, jvp=_forward.jvp)
