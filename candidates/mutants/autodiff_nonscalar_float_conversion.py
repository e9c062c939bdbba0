"""autodiff: grad checks for a scalar output with float(): torch's ValueError does not name f."""

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.autodiff import reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_non_scalar_output_raises"]

_reverse = edit_source(reverse, [
    ('    if out_value.numel() != 1:\n'
     '        raise ValueError(f"grad: f must return a scalar, got shape {tuple(out_value.shape)} (use vjp)")\n',
     '    float(out_value)  # a scalar, or torch raises\n'),
])
autodiff = patch(ref, grad=_reverse.grad)
