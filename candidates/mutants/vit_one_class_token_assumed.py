"""vit: interpolate_pos_embed always splits off exactly one prefix token, whatever n_prefix says."""

import torch

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import patch

COMPONENT = "vit"
CAUGHT_BY = ["test_interpolate_keeps_prefix_tokens", "test_interpolate_matches_bicubic",
             "test_interpolate_same_grid_is_identity"]


def interpolate_pos_embed(pos, old_grid, new_grid, n_prefix=1):
    cls, grid = pos[:, :1], pos[:, n_prefix:]  # "the" class token
    return ref.interpolate_pos_embed(torch.cat([cls, grid], dim=1), old_grid, new_grid, 1)


vit = patch(ref, interpolate_pos_embed=interpolate_pos_embed)
