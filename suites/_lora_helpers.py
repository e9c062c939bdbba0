"""What the lora and finetune suites share: the float64 oracle of a LoRA layer, the A and B a test gives it,
and the toy model whose Linear layers ``apply_lora`` and ``apply_qlora`` wrap (finetune builds on lora, so
they live here)."""

from __future__ import annotations

import torch
from torch import nn

from fmspec.suites import strategies as ss


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


def set_ab(layer: nn.Module, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Give A and B random values (as after some training); returns them in float64."""
    A = ss.randn(tuple(layer.A.shape), seed + 7)
    B = ss.randn(tuple(layer.B.shape), seed + 8)
    with torch.no_grad():
        layer.A.copy_(A)
        layer.B.copy_(B)
    return A.to(layer.A.dtype).double(), B.to(layer.B.dtype).double()


def lora_oracle(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None, A: torch.Tensor, B: torch.Tensor,
                scaling: float) -> torch.Tensor:
    """h = x W^T + b + scaling · x A^T B^T, in float64 (W: the base weight, dequantized for QLoRA)."""
    x = x.double()
    h = x @ W.double().T + scaling * (x @ A.double().T) @ B.double().T
    return h + b.double() if b is not None else h


def lora_terms(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None, A: torch.Tensor, B: torch.Tensor,
               scaling: float) -> float:
    """The largest sum of absolute terms behind an element of h (the oracle at absolute values: it is
    multilinear), for ``assert_close(scale=)``: h may cancel far below its terms."""
    return lora_oracle(x.abs(), W.abs(), None if b is None else b.abs(), A.abs(), B.abs(), scaling).max().item()
