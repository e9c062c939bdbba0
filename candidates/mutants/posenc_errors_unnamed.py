"""posenc: a bad dim raises ValueError("size must be an int >= 1, ..."), which does not say which size."""

import fmspec.reference.posenc as ref
from fmspec.candidates.mutants import edited

COMPONENT = "posenc"
CAUGHT_BY = ["test_bad_arguments_raise_value_error"]

posenc = edited(ref, ('raise ValueError(f"dim must be an int >= 1, got {dim!r}")',
                      'raise ValueError(f"size must be an int >= 1, got {dim!r}")'))
