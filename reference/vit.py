"""Vision Transformer patching (Dosovitskiy et al., "An image is worth 16×16 words", 2021; lecture 004).

"Images are also just sequences": cut a (C, H, W) image into non-overlapping P × P patches, flatten each
patch and map it linearly to a token of width E::

    patchify:  (B, C, H, W) -> (B, N, C·P·P),   N = (H / P) · (W / P)
    token_n  = W_e · patch_n + b,               W_e (E, C·P·P)

Conventions (those of the paper's code, timm and torch's ``nn.Unfold``): patches in row-major order
(left to right along the top row of patches, then the next row), each flattened in (C, P, P) order, i.e.
channel first, then the pixel row, then the pixel column. With these, the linear patch embedding is
exactly a Conv2d with kernel = stride = P whose weight is W_e reshaped to (E, C, P, P): that is how the
paper's code (and timm's ``PatchEmbed``) computes it. H and W must be multiples of P.

A learned position embedding of shape (1, n_prefix + gh·gw, E) (n_prefix = 1 for the class token) is
tied to the grid (gh, gw) it was trained on. For another image size the grid part is resized as an image
with bicubic interpolation (``align_corners=False``, no antialiasing, as DeiT and MAE fine-tune) and the
prefix tokens are kept as they are.

Worked numbers (the lecture's ViT-X/16): a 224 × 224 RGB image gives N = 14 · 14 = 196 patches of
3 · 16 · 16 = 768 values, exactly ViT-B's width E = 768, so ViT-B/16's patch embedding has
768 · 768 + 768 = 590,592 parameters; ViT-H/14 at 224 × 224 sees 16 · 16 = 256 patches. A 1 × 4 × 4
image holding 0..15 with P = 2 gives the patches [0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_int(value: object, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _grid(height: int, width: int, patch: int) -> tuple[int, int]:
    if height % patch or width % patch:
        raise ValueError(f"image size {height}x{width} is not divisible by patch={patch}")
    return height // patch, width // patch


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C·P·P): row-major patches, each flattened channel first."""
    _check_int(patch, "patch")
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError(f"images must be a (B, C, H, W) tensor, got {getattr(images, 'shape', type(images))}")
    B, C, H, W = images.shape
    gh, gw = _grid(H, W, patch)
    x = images.reshape(B, C, gh, patch, gw, patch)  # (B, C, gh, P, gw, P)
    x = x.permute(0, 2, 4, 1, 3, 5)  # (B, gh, gw, C, P, P)
    return x.reshape(B, gh * gw, C * patch * patch)  # (B, N, C·P·P)


def unpatchify(patches: torch.Tensor, patch: int, height: int, width: int) -> torch.Tensor:
    """(B, N, C·P·P) -> (B, C, H, W), the inverse of :func:`patchify`."""
    _check_int(patch, "patch")
    _check_int(height, "height")
    _check_int(width, "width")
    if not isinstance(patches, torch.Tensor) or patches.dim() != 3:
        raise ValueError(f"patches must be a (B, N, C*P*P) tensor, got {getattr(patches, 'shape', type(patches))}")
    gh, gw = _grid(height, width, patch)
    B, N, D = patches.shape
    if N != gh * gw:
        raise ValueError(f"patches holds N={N} patches, but a {height}x{width} image has {gh * gw} of size {patch}")
    if D % (patch * patch):
        raise ValueError(f"patches: patch length {D} is not C*{patch}*{patch} for any channel count C")
    C = D // (patch * patch)
    x = patches.reshape(B, gh, gw, C, patch, patch)  # (B, gh, gw, C, P, P)
    x = x.permute(0, 3, 1, 4, 2, 5)  # (B, C, gh, P, gw, P)
    return x.reshape(B, C, height, width)  # (B, C, H, W)


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, N, E): patchify, then one linear map shared by all patches.

    The weights live in ``proj.weight`` (E, C, P, P) and ``proj.bias`` (E,), the layout of the paper's
    code and timm (a Conv2d), so their checkpoints load as they are. ``grid_size = (H/P, W/P)``,
    ``num_patches = N``. Images must have the ``img_size`` given at construction.
    """

    def __init__(self, img_size: int | tuple[int, int] = 224, patch: int = 16, in_chans: int = 3,
                 embed_dim: int = 768):
        super().__init__()
        size = (img_size, img_size) if isinstance(img_size, int) and not isinstance(img_size, bool) else img_size
        if not isinstance(size, (tuple, list)) or len(size) != 2:
            raise ValueError(f"img_size must be an int or a (height, width) pair, got {img_size!r}")
        for value, name in ((size[0], "img_size"), (size[1], "img_size"), (patch, "patch"),
                            (in_chans, "in_chans"), (embed_dim, "embed_dim")):
            _check_int(value, name)
        self.img_size = (size[0], size[1])
        self.patch = patch
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.grid_size = _grid(size[0], size[1], patch)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        # a Conv2d only as the container of W_e (E, C, P, P) and b (E,), initialised as timm's
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch, stride=patch)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_chans or tuple(images.shape[2:]) != self.img_size:
            raise ValueError(f"images must have shape (B, {self.in_chans}, {self.img_size[0]}, {self.img_size[1]}), "
                             f"got {tuple(images.shape)}")
        patches = patchify(images, self.patch)  # (B, N, C·P·P)
        w = self.proj.weight.reshape(self.embed_dim, -1)  # (E, C·P·P), (C, P, P) order like the patches
        return patches @ w.T + self.proj.bias  # (B, N, E)


def interpolate_pos_embed(pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int],
                          n_prefix: int = 1) -> torch.Tensor:
    """(B, n_prefix + gh·gw, E) -> (B, n_prefix + nh·nw, E): bicubic resize of the grid, prefix kept."""
    if not isinstance(pos, torch.Tensor) or pos.dim() != 3 or not pos.is_floating_point():
        raise ValueError(f"pos must be a floating (B, N, E) tensor, got {getattr(pos, 'shape', type(pos))}")
    if not isinstance(n_prefix, int) or isinstance(n_prefix, bool) or n_prefix < 0:
        raise ValueError(f"n_prefix must be an int >= 0, got {n_prefix!r}")
    for grid, name in ((old_grid, "old_grid"), (new_grid, "new_grid")):
        if not isinstance(grid, (tuple, list)) or len(grid) != 2:
            raise ValueError(f"{name} must be a (rows, columns) pair, got {grid!r}")
        _check_int(grid[0], name)
        _check_int(grid[1], name)
    (gh, gw), (nh, nw) = old_grid, new_grid
    B, N, E = pos.shape
    if N != n_prefix + gh * gw:
        raise ValueError(f"pos holds {N} tokens, expected n_prefix + {gh}*{gw} = {n_prefix + gh * gw} for old_grid")
    prefix = pos[:, :n_prefix]  # (B, n_prefix, E): class token(s), not on the grid
    if (gh, gw) == (nh, nw):
        return pos.clone()
    grid = pos[:, n_prefix:].reshape(B, gh, gw, E).permute(0, 3, 1, 2)  # (B, E, gh, gw): an E-channel image
    grid = F.interpolate(grid, size=(nh, nw), mode="bicubic", align_corners=False)  # (B, E, nh, nw)
    grid = grid.permute(0, 2, 3, 1).reshape(B, nh * nw, E)  # (B, nh·nw, E), row-major again
    return torch.cat([prefix, grid], dim=1)
