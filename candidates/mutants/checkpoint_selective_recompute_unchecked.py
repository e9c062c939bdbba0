"""checkpoint: checkpoint_selective never checks that recompute is callable: a string fails inside autograd's pack hook."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edited

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_selective_bad_recompute_raises_type_error"]

checkpoint = edited(ref, ('    if not callable(recompute):\n'
                          '        raise TypeError(f"recompute must be a callable Tensor -> bool, got {recompute!r}")\n',
                          ''))
