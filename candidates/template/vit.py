"""vit: ViT patching, patch embedding and position-embedding interpolation. Spec: docs/spec/vit.md."""

import torch
from torch import nn


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C·P·P), N = (H/P)(W/P): patches row-major, each flattened (C, P, P).
    H or W not a multiple of P raises ValueError."""
    raise NotImplementedError("vit.patchify")


def unpatchify(patches: torch.Tensor, patch: int, height: int, width: int) -> torch.Tensor:
    """(B, N, C·P·P) -> (B, C, H, W), the inverse of patchify; inconsistent sizes raise ValueError."""
    raise NotImplementedError("vit.unpatchify")


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, N, E) = patchify(x) @ W.T + b. Weights in ``proj.weight`` (E, C, P, P) and
    ``proj.bias`` (E,) (timm's layout); attributes ``grid_size`` (H/P, W/P) and ``num_patches``.
    ``img_size`` is an int or (H, W); a size not divisible by ``patch`` raises ValueError, as does an
    input image of another size."""

    def __init__(self, img_size=224, patch: int = 16, in_chans: int = 3, embed_dim: int = 768):
        super().__init__()
        raise NotImplementedError("vit.PatchEmbed")


def interpolate_pos_embed(pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int],
                          n_prefix: int = 1) -> torch.Tensor:
    """(B, n_prefix + gh·gw, E) -> (B, n_prefix + nh·nw, E): prefix tokens copied, the grid resized with
    bicubic interpolation (align_corners=False, no antialiasing); the same grid gives pos unchanged."""
    raise NotImplementedError("vit.interpolate_pos_embed")
