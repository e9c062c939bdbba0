"""vit: patches listed column by column (column-major grid) instead of row by row."""

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
    x = images.reshape(B, C, H // patch, patch, W // patch, patch).permute(0, 4, 2, 1, 3, 5)  # (B, gw, gh, C, P, P)
    return x.reshape(B, -1, C * patch * patch)


def unpatchify(patches, patch, height, width):
    B, N, D = patches.shape
    gh, gw = ref._grid(height, width, patch)
    x = patches.reshape(B, gw, gh, D // patch**2, patch, patch).permute(0, 3, 2, 4, 1, 5)
    return x.reshape(B, -1, height, width)


class PatchEmbed(ref.PatchEmbed):
    def forward(self, images):
        return patchify(images, self.patch) @ self.proj.weight.reshape(self.embed_dim, -1).T + self.proj.bias


vit = patch(ref, patchify=patchify, unpatchify=unpatchify, PatchEmbed=PatchEmbed)
