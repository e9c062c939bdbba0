"""autodiff: jvp pairs inputs and tangents with zip, silently dropping the extras of the longer list."""

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.autodiff import forward

COMPONENT = "autodiff"
CAUGHT_BY = ["test_bad_jvp_arguments_raise"]

_forward = edit_source(forward, [
    ('    if len(xs) != len(tangents):\n'
     '        raise ValueError(f"jvp: tangents has {len(tangents)} entries, xs has {len(xs)}")\n',
     ''),  # zip below pairs what it can
])
autodiff = patch(ref, jvp=_forward.jvp)
