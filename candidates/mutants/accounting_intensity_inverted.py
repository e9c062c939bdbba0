"""accounting: arithmetic_intensity divides bytes by FLOPs (bytes per FLOP)."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_h100_arithmetic_intensity_is_160", "test_arithmetic_intensity_formula"]


def arithmetic_intensity(flops_per_s, bytes_per_s):
    return 1 / ref.arithmetic_intensity(flops_per_s, bytes_per_s)  # bug: inverted


accounting = patch(ref, arithmetic_intensity=arithmetic_intensity)
