"""posenc: positions counted from 1 instead of 0 (off by one)."""

import fmspec.reference.posenc as ref
from fmspec.candidates.mutants import patch

COMPONENT = "posenc"
CAUGHT_BY = ["test_position_zero_is_sin0_cos0", "test_matches_closed_form", "test_bad_arguments_raise_value_error"]


def sinusoidal(num_positions, dim, base=10000.0):
    return ref.sinusoidal(num_positions + 1, dim, base)[1:]


posenc = patch(ref, sinusoidal=sinusoidal)
