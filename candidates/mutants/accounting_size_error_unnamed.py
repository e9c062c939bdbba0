"""accounting: a bad size raises ValueError("sizes must be ints >= 1, got 0"), which does not say which of d, L, T, V, n_heads or B it was."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import edited

COMPONENT = "accounting"
CAUGHT_BY = ["test_bad_arguments_raise_value_error"]

accounting = edited(ref, ('raise ValueError(f"{name} must be an int >= 1, got {value!r}")',
                          'raise ValueError(f"sizes must be ints >= 1, got {value!r}")  # which size?'))
