"""vit: PatchEmbed also holds the learned position embedding (1, N, E), zero-initialised: N·E parameters too many."""

import torch
from torch import nn

import fmspec.reference.vit as ref
from fmspec.candidates.mutants import patch

COMPONENT = "vit"
CAUGHT_BY = ["test_vit_16_worked_numbers"]


class PatchEmbed(ref.PatchEmbed):
    def __init__(self, img_size=224, patch=16, in_chans=3, embed_dim=768):
        super().__init__(img_size, patch, in_chans, embed_dim)
        # bug: the position embedding belongs to the model, not to the patch embedding
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches, embed_dim))

    def forward(self, images):
        return super().forward(images) + self.pos_embed.to(images.dtype)


vit = patch(ref, PatchEmbed=PatchEmbed)
