"""posenc: frequency base^(-i/d) per pair index i instead of base^(-2i/d)."""

import torch

import fmspec.reference.posenc as ref
from fmspec.candidates.mutants import patch

COMPONENT = "posenc"
CAUGHT_BY = ["test_matches_closed_form", "test_bad_arguments_raise_value_error"]


def sinusoidal(num_positions, dim, base=10000.0):
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    i = torch.arange(0, (dim + 1) // 2, dtype=torch.float64)
    angle = pos * base ** (-i / dim)
    pe = torch.empty(num_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe


posenc = patch(ref, sinusoidal=sinusoidal)
