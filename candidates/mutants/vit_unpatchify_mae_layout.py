"""vit: unpatchify reads patches as (P, P, C) (MAE's layout) while patchify writes (C, P, P)."""

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import patch

COMPONENT = "vit"
CAUGHT_BY = [
    "test_unpatchify_inverts_patchify",
    "test_patchify_inverts_unpatchify",
    "test_unpatchify_inconsistent_sizes_raise",
]


def unpatchify(patches, patch, height, width):
    B, N, D = patches.shape
    gh, gw = ref._grid(height, width, patch)
    x = patches.reshape(B, gh, gw, patch, patch, D // patch**2)  # (B, gh, gw, P, P, C)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(B, -1, height, width)


vit = patch(ref, unpatchify=unpatchify)
