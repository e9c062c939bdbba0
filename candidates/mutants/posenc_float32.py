"""posenc: computed in float32 (angles of large positions lose their low digits)."""

import torch

import fmspec.reference.posenc as ref
from fmspec.candidates.mutants import patch

COMPONENT = "posenc"
CAUGHT_BY = [
    "test_position_zero_is_sin0_cos0",
    "test_bad_arguments_raise_value_error",
    "test_dot_product_depends_only_on_offset",
    "test_offset_is_a_fixed_rotation",
    "test_same_answer_when_called_twice",
    "test_values_in_unit_interval",
]


def sinusoidal(num_positions, dim, base=10000.0):
    pos = torch.arange(num_positions, dtype=torch.float32)[:, None]
    freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    angle = pos * freq
    pe = torch.empty(num_positions, dim, dtype=torch.float32)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe


posenc = patch(ref, sinusoidal=sinusoidal)
