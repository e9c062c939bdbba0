"""vit: sizes not divisible by the patch are silently cropped (floor division, as a strided conv does)."""

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import patch

COMPONENT = "vit"
CAUGHT_BY = ["test_patchify_non_divisible_size_raises", "test_patch_embed_non_divisible_size_raises"]


def patchify(images, patch):
    B, C, H, W = images.shape
    gh, gw = H // patch, W // patch
    return ref.patchify(images[:, :, : gh * patch, : gw * patch], patch)


class PatchEmbed(ref.PatchEmbed):
    def __init__(self, img_size=224, patch=16, in_chans=3, embed_dim=768):
        size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        super().__init__((size[0] // patch * patch, size[1] // patch * patch), patch, in_chans, embed_dim)


vit = patch(ref, patchify=patchify, PatchEmbed=PatchEmbed)
