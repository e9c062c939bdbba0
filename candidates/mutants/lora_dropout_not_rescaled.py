"""lora: dropout on the LoRA input zeroes entries but does not rescale the kept ones by 1 / (1 - p)."""

import torch
from torch import nn

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited


class MaskOnlyDropout(nn.Module):
    """A hand-written dropout: the keep-mask alone, without nn.Dropout's 1 / (1 - p)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (torch.rand_like(x) >= self.p).to(x.dtype)


COMPONENT = "lora"
CAUGHT_BY = ["test_dropout_only_on_lora_path"]

lora = edited(ref, ("self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()",
                    "self.dropout = MaskOnlyDropout(dropout)"), MaskOnlyDropout=MaskOnlyDropout)
