"""LoRA: low-rank adaptation of a frozen linear layer (Hu et al., 2021; lecture 004, "Finetuning your own
Model – LoRa"; seed 002 derives its gradients).

Instead of learning a full offset V (out × in) to a pretrained weight W, learn a low-rank one::

    h = W x + V x  ≈  W x + (alpha / r) · B A x,      A (r, in),  B (out, r),  r << in, out

W (and its bias) stay frozen; only A and B train: r·(in + out) parameters per layer instead of in·out
(the lecture's "M has m × n parameters, AB has r(m + n)"). A starts random (Kaiming-uniform, as the
paper's code and peft do) and B starts at zero, so the adapted layer equals the pretrained one at
initialisation. The update is scaled by alpha / r, so that changing r does not change the learning rate
one would tune. Dropout, if any, acts on the input of the LoRA path only.

``merge()`` folds the update into the base weight, W ← W + (alpha / r) B A, so inference costs nothing
extra; ``unmerge()`` takes it out again. Both are idempotent: merging a merged layer does nothing.

Worked example (r = 1, alpha = 1, so the scaling is 1)::

    W = [[1, 0], [0, 1]],  A = [[1, 2]],  B = [[1], [0]],  x = [1, 1]
    h = W x + B (A x) = [1, 1] + [1, 0] · 3 = [4, 1]

and for a 1024 × 1024 layer with r = 8: 8 · (1024 + 1024) = 16,384 trainable parameters instead of
1,048,576 (1.6 %).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class LoRALinear(nn.Module):
    """``base`` (an ``nn.Linear``, frozen) plus the trainable low-rank update (alpha / r) · B A."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
        if not isinstance(r, int) or isinstance(r, bool) or r < 1:
            raise ValueError(f"r must be an int >= 1, got {r!r}")
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha):
            raise ValueError(f"alpha must be a finite number, got {alpha!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.base = base
        for p in base.parameters():  # the pretrained weights stay frozen
            p.requires_grad_(False)
        self.r = r
        self.alpha = float(alpha)
        self.scaling = self.alpha / r
        like = dict(dtype=base.weight.dtype, device=base.weight.device)
        self.A = nn.Parameter(torch.empty(r, base.in_features, **like))  # (r, in)
        self.B = nn.Parameter(torch.zeros(base.out_features, r, **like))  # (out, r): zero, so h = W x at init
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))  # nn.Linear's own initialisation
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """The update (alpha / r) · B A, shaped like the base weight (out, in)."""
        return self.scaling * (self.B @ self.A)  # (out, r) @ (r, in) -> (out, in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base(x)  # (..., out) = x W^T + b
        if self.merged:  # W already holds the update
            return h
        return h + self.scaling * (self.dropout(x) @ self.A.T @ self.B.T)  # (..., in) -> (..., r) -> (..., out)

    @torch.no_grad()
    def merge(self) -> None:
        """W ← W + (alpha / r) B A; afterwards forward is the base layer alone. A merged layer stays as it is."""
        if not self.merged:
            self.base.weight += self.delta_weight()
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W ← W - (alpha / r) B A, undoing :meth:`merge`. An unmerged layer stays as it is."""
        if self.merged:
            self.base.weight -= self.delta_weight()
            self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha}, merged={self.merged}"


def _matches(name: str, target: str) -> bool:
    """peft's rule: a module matches a target if its full name is the target or ends with "." + target."""
    return name == target or name.endswith("." + target)


def select_linears(model: nn.Module, names: Sequence[str], argument: str) -> list[tuple[str, nn.Linear]]:
    """The modules of ``model`` matched by ``names`` (:func:`_matches`); every name must match a module and
    every match must be an ``nn.Linear``, else an error naming ``argument``."""
    if isinstance(names, str) or not names or not all(isinstance(t, str) and t for t in names):
        raise ValueError(f"{argument} must be a non-empty sequence of module names, got {names!r}")
    chosen = [(name, module) for name, module in model.named_modules()
              if name and any(_matches(name, t) for t in names)]
    unmatched = [t for t in names if not any(_matches(name, t) for name, _ in chosen)]
    if unmatched:
        raise ValueError(f"{argument}: {unmatched!r} match no module of the model")
    for name, module in chosen:
        if not isinstance(module, nn.Linear):
            raise TypeError(f"{argument}: module {name!r} is a {type(module).__name__}, not an nn.Linear")
    return chosen


def apply_lora(model: nn.Module, targets: Sequence[str], r: int, alpha: float) -> nn.Module:
    """Wrap every ``nn.Linear`` of ``model`` whose name matches a target in a :class:`LoRALinear`.

    ``targets`` are module names or name suffixes (``"q"`` matches ``"layers.0.attn.q"``, not ``"attn.fq"``).
    Every parameter of the model other than the new A and B is frozen. The model is changed in place and
    returned. A target that matches no module, or matches a module that is not an ``nn.Linear``, raises.
    """
    chosen = select_linears(model, targets, "targets")
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise ValueError(f"r must be an int >= 1, got {r!r}")
    for p in model.parameters():  # freeze everything; the LoRA parameters created below train
        p.requires_grad_(False)
    for name, module in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(module, r, alpha))
    return model
