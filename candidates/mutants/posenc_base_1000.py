"""posenc: base 1000 instead of 10000 (frequencies too high)."""

import fmspec.reference.posenc as ref
from fmspec.candidates.mutants import patch

COMPONENT = "posenc"
CAUGHT_BY = ["test_matches_closed_form"]


def sinusoidal(num_positions, dim, base=10000.0):
    return ref.sinusoidal(num_positions, dim, base / 10)


posenc = patch(ref, sinusoidal=sinusoidal)
