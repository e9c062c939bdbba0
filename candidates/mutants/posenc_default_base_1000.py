"""posenc: the default base is 1000 instead of the paper's 10000 (an explicit base is honoured)."""

import fmspec.reference.posenc as ref
from fmspec.candidates.mutants import patch

COMPONENT = "posenc"
CAUGHT_BY = ["test_default_base_is_10000"]


def sinusoidal(num_positions, dim, base=1000.0):
    return ref.sinusoidal(num_positions, dim, base)


posenc = patch(ref, sinusoidal=sinusoidal)
