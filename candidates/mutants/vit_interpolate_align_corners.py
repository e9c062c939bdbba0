"""vit: position embeddings resized with align_corners=True (corner tokens pinned) instead of False."""

import torch
import torch.nn.functional as F

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import patch

COMPONENT = "vit"
CAUGHT_BY = ["test_interpolate_matches_bicubic", "test_interpolate_bad_arguments_raise"]


def interpolate_pos_embed(pos, old_grid, new_grid, n_prefix=1):
    (gh, gw), (nh, nw) = old_grid, new_grid
    if (gh, gw) == (nh, nw):
        return pos.clone()
    B, N, E = pos.shape
    grid = pos[:, n_prefix:].reshape(B, gh, gw, E).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(nh, nw), mode="bicubic", align_corners=True)
    return torch.cat([pos[:, :n_prefix], grid.permute(0, 2, 3, 1).reshape(B, nh * nw, E)], dim=1)


vit = patch(ref, interpolate_pos_embed=interpolate_pos_embed)
