"""vit from torch's own operators: ``nn.Unfold``/``nn.Fold`` cut and paste the patches, ``nn.Conv2d``
(kernel = stride = P) is the patch embedding, ``F.interpolate(mode="bicubic")`` resizes position embeddings.

timm is not a dependency (it needs torchvision, hence a matching torch build); its ``PatchEmbed`` is the
same Conv2d, and its ``resample_abs_pos_embed`` antialiases by default, which the contract does not
(bicubic with antialiasing uses a different cubic kernel even when upsampling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check(height: int, width: int, patch: int) -> None:
    if not isinstance(patch, int) or isinstance(patch, bool) or patch < 1:
        raise ValueError(f"patch must be an int >= 1, got {patch!r}")
    if height % patch or width % patch:
        raise ValueError(f"image size {height}x{width} is not divisible by patch={patch}")


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    _check(images.shape[2], images.shape[3], patch)
    return F.unfold(images, kernel_size=patch, stride=patch).transpose(1, 2)  # (B, C·P·P, N) -> (B, N, C·P·P)


def unpatchify(patches: torch.Tensor, patch: int, height: int, width: int) -> torch.Tensor:
    for value, name in ((height, "height"), (width, "width")):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    _check(height, width, patch)
    if patches.dim() != 3 or patches.shape[1] != (height // patch) * (width // patch) or patches.shape[2] % (patch * patch):
        raise ValueError(f"patches of shape {tuple(patches.shape)} do not tile a {height}x{width} image with patch={patch}")
    return F.fold(patches.transpose(1, 2), (height, width), kernel_size=patch, stride=patch)


class PatchEmbed(nn.Module):
    def __init__(self, img_size=224, patch: int = 16, in_chans: int = 3, embed_dim: int = 768):
        super().__init__()
        size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        if len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
            raise ValueError(f"img_size must be an int or a (height, width) pair, got {img_size!r}")
        _check(size[0], size[1], patch)
        self.img_size = size
        self.grid_size = (size[0] // patch, size[1] // patch)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch, stride=patch)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.proj.in_channels or tuple(images.shape[2:]) != self.img_size:
            raise ValueError(f"images must have shape (B, {self.proj.in_channels}, *{self.img_size}), "
                             f"got {tuple(images.shape)}")
        return self.proj(images).flatten(2).transpose(1, 2)  # (B, E, gh, gw) -> (B, N, E)


def interpolate_pos_embed(pos: torch.Tensor, old_grid, new_grid, n_prefix: int = 1) -> torch.Tensor:
    if not isinstance(n_prefix, int) or n_prefix < 0:
        raise ValueError(f"n_prefix must be an int >= 0, got {n_prefix!r}")
    (gh, gw), (nh, nw) = old_grid, new_grid
    if min(gh, gw, nh, nw) < 1:
        raise ValueError(f"grids must be positive, got old_grid={old_grid!r}, new_grid={new_grid!r}")
    if pos.dim() != 3 or pos.shape[1] != n_prefix + gh * gw:
        raise ValueError(f"pos must be (B, {n_prefix} + {gh}*{gw}, E), got {tuple(pos.shape)}")
    if (gh, gw) == (nh, nw):
        return pos.clone()
    B, _, E = pos.shape
    grid = pos[:, n_prefix:].reshape(B, gh, gw, E).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(nh, nw), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :n_prefix], grid.permute(0, 2, 3, 1).reshape(B, nh * nw, E)], dim=1)
