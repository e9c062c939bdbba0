"""vit: patchify returns nn.Unfold's (B, C·P·P, N) layout as it is, without the transpose to (B, N, C·P·P)."""

import torch.nn.functional as F

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import patch

COMPONENT = "vit"
CAUGHT_BY = ["test_patchify_worked_example", "test_number_of_patches_is_hw_over_p_squared", "test_patchify_matches_slicing"]


def patchify(images, patch):
    ref._grid(images.shape[2], images.shape[3], patch)
    return F.unfold(images, kernel_size=patch, stride=patch)


vit = patch(ref, patchify=patchify)
