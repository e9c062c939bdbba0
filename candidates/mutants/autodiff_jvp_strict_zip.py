"""autodiff: jvp checks lengths with zip(strict=True): its ValueError ("zip() argument 2 is shorter") does not name tangents."""

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.autodiff import forward

COMPONENT = "autodiff"
CAUGHT_BY = ["test_bad_jvp_arguments_raise"]

_forward = edit_source(forward, [
    ('    if len(xs) != len(tangents):\n'
     '        raise ValueError(f"jvp: tangents has {len(tangents)} entries, xs has {len(xs)}")\n',
     '    list(zip(xs, tangents, strict=True))  # raises on a length mismatch\n'),
])
autodiff = patch(ref, jvp=_forward.jvp)
