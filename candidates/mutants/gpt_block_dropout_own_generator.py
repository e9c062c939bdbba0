"""gpt: the block draws its dropout masks from a generator of its own, which checkpointing cannot replay."""

import torch
from torch import nn

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_checkpointing_gives_the_same_loss_curve"]


class SeededDropout(nn.Module):
    """Dropout with a private, seeded generator: reproducible on its own, invisible to torch's random state."""

    def __init__(self, p: float):
        super().__init__()
        self.p, self.gen = p, torch.Generator().manual_seed(0)

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, generator=self.gen, dtype=x.dtype) >= self.p
        return x * keep / (1 - self.p)


class Block(ref.Block):
    def __init__(self, d, n_heads, causal=True, attention=None, layer_norm=None, dropout=0.0):
        super().__init__(d, n_heads, causal, attention, layer_norm, dropout)
        self.drop = SeededDropout(dropout)


gpt = patch(ref, Block=Block)
