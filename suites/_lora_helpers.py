"""What the lora and finetune suites share: the toy model whose Linear layers ``apply_lora`` and
``apply_qlora`` wrap (finetune builds on lora, so the model lives here)."""

from __future__ import annotations

import torch
from torch import nn


class Toy(nn.Module):
    """Attention-like projections q, k, v, a decoy "fq" (a target "q" must not match it), an MLP and a norm,
    in float64. At the default d = 8 every Linear holds a multiple of 16 weights (64 or 128), so block sizes 1,
    2, 4, 8 and 16 divide them all (the lora suite uses d = 6)."""

    def __init__(self, d: int = 8):
        super().__init__()
        self.norm = nn.LayerNorm(d, dtype=torch.float64)
        self.attn = nn.Module()
        for name in ("q", "k", "v"):
            setattr(self.attn, name, nn.Linear(d, d, dtype=torch.float64))
        self.fq = nn.Linear(d, d, dtype=torch.float64)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d, dtype=torch.float64), nn.GELU(),
                                 nn.Linear(2 * d, d, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        h = self.attn.q(h) * self.attn.k(h) + self.attn.v(h) + self.fq(h)
        return self.mlp(h)


def toy(seed: int, d: int = 8) -> Toy:
    torch.manual_seed(seed)  # the toy's own weights; nothing of the candidate's depends on it
    return Toy(d)
