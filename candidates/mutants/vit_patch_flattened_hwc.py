"""vit: each patch flattened in (P, P, C) order (channels last) instead of (C, P, P)."""

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import patch

COMPONENT = "vit"
CAUGHT_BY = [
    "test_patchify_worked_example",
    "test_patchify_matches_slicing",
    "test_patchify_times_weight_equals_conv2d",
    "test_patch_embed_equals_conv2d",
    "test_patch_embed_wrong_image_size_raises",
    "test_unpatchify_inconsistent_sizes_raise",
]


def patchify(images, patch):
    B, C, H, W = images.shape
    ref._grid(H, W, patch)
    x = images.reshape(B, C, H // patch, patch, W // patch, patch).permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, P, P, C)
    return x.reshape(B, -1, patch * patch * C)


def unpatchify(patches, patch, height, width):  # the consistent inverse: round trips still pass
    B, N, D = patches.shape
    gh, gw = ref._grid(height, width, patch)
    x = patches.reshape(B, gh, gw, patch, patch, D // patch**2).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(B, -1, height, width)


class PatchEmbed(ref.PatchEmbed):
    def forward(self, images):
        return patchify(images, self.patch) @ self.proj.weight.reshape(self.embed_dim, -1).T + self.proj.bias


vit = patch(ref, patchify=patchify, unpatchify=unpatchify, PatchEmbed=PatchEmbed)
