"""posenc: sin columns first, then cos columns ([sin..., cos...]) instead of interleaved pairs."""

import torch

import fmspec.reference.posenc as ref
from fmspec.candidates.mutants import patch

COMPONENT = "posenc"
CAUGHT_BY = [
    "test_position_zero_is_sin0_cos0",
    "test_matches_closed_form",
    "test_sin_cos_pairs_have_unit_norm",
    "test_dot_product_depends_only_on_offset",
    "test_offset_is_a_fixed_rotation",
]


def sinusoidal(num_positions, dim, base=10000.0):
    pe = ref.sinusoidal(num_positions, dim, base)
    return torch.cat([pe[:, 0::2], pe[:, 1::2]], dim=1)


posenc = patch(ref, sinusoidal=sinusoidal)
