"""lora: low-rank adaptation of a frozen linear layer. Spec: docs/spec/lora.md."""

from typing import Sequence

from torch import nn


class LoRALinear(nn.Module):
    """``base`` (an ``nn.Linear``, frozen) plus the trainable update (alpha / r) · B A.

    h = x W^T + b + (alpha / r) · dropout(x) A^T B^T, with ``A`` (r, in) random and ``B`` (out, r) zero at
    init (parameters in the base's dtype and device), so the layer equals ``base`` until B trains. Only A
    and B require gradients. ``merge()`` adds (alpha / r) B A to ``base.weight``, ``unmerge()`` takes it out;
    both idempotent; ``merged`` says which. Bad ``base`` (not an nn.Linear), ``r`` (not an int >= 1) or
    ``dropout`` (outside [0, 1)) raise TypeError / ValueError naming the argument.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        raise NotImplementedError("lora.LoRALinear")

    def forward(self, x):
        raise NotImplementedError("lora.LoRALinear.forward")

    def merge(self) -> None:
        raise NotImplementedError("lora.LoRALinear.merge")

    def unmerge(self) -> None:
        raise NotImplementedError("lora.LoRALinear.unmerge")


def apply_lora(model: nn.Module, targets: Sequence[str], r: int, alpha: float) -> nn.Module:
    """Wrap every nn.Linear whose name is a target or ends with "." + target in a LoRALinear; freeze all
    other parameters; return the model (it may be changed in place). A target matching no module, or a
    module that is not an nn.Linear, raises ValueError / TypeError."""
    raise NotImplementedError("lora.apply_lora")
