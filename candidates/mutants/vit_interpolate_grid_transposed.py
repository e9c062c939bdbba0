"""vit: the old grid read as (columns, rows): pos[:, 1:].reshape(B, gw, gh, E) for a non-square grid."""

import torch
import torch.nn.functional as F

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import patch

COMPONENT = "vit"
CAUGHT_BY = [
    "test_interpolate_matches_bicubic",
    "test_interpolate_commutes_with_transpose",
    "test_interpolate_bad_arguments_raise",
]


def interpolate_pos_embed(pos, old_grid, new_grid, n_prefix=1):
    (gh, gw), (nh, nw) = old_grid, new_grid
    if (gh, gw) == (nh, nw):
        return pos.clone()
    B, N, E = pos.shape
    grid = pos[:, n_prefix:].reshape(B, gw, gh, E).permute(0, 3, 2, 1)  # (B, E, gh, gw), scrambled
    grid = F.interpolate(grid, size=(nh, nw), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :n_prefix], grid.permute(0, 2, 3, 1).reshape(B, nh * nw, E)], dim=1)


vit = patch(ref, interpolate_pos_embed=interpolate_pos_embed)
