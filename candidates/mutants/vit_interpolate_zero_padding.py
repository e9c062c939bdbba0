"""vit: position grid resized with grid_sample (bicubic, zero padding): border tokens fade toward 0."""

import torch
import torch.nn.functional as F

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import patch

COMPONENT = "vit"
CAUGHT_BY = [
    "test_interpolate_matches_bicubic",
    "test_interpolate_constant_grid_stays_constant",
    "test_interpolate_bad_arguments_raise",
]


def interpolate_pos_embed(pos, old_grid, new_grid, n_prefix=1):
    (gh, gw), (nh, nw) = old_grid, new_grid
    B, N, E = pos.shape
    grid = pos[:, n_prefix:].reshape(B, gh, gw, E).permute(0, 3, 1, 2)  # (B, E, gh, gw)
    ys = (torch.arange(nh, dtype=pos.dtype) + 0.5) / nh * 2 - 1  # output centres in [-1, 1]
    xs = (torch.arange(nw, dtype=pos.dtype) + 0.5) / nw * 2 - 1
    where = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).expand(B, nh, nw, 2)
    out = F.grid_sample(grid, where, mode="bicubic", padding_mode="zeros", align_corners=False)
    return torch.cat([pos[:, :n_prefix], out.permute(0, 2, 3, 1).reshape(B, nh * nw, E)], dim=1)


vit = patch(ref, interpolate_pos_embed=interpolate_pos_embed)
