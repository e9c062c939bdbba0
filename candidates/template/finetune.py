"""finetune: bottleneck adapters and QLoRA. Spec: docs/spec/finetune.md."""

from typing import Callable, Sequence

import torch
from torch import nn


class Adapter(nn.Module):
    """A bottleneck adapter with a residual: h = x + up(f(down(x))) (Houlsby et al., 2019).

    ``down`` is an ``nn.Linear(d, bottleneck)`` (random at init), ``up`` an ``nn.Linear(bottleneck, d)`` whose
    weight and bias start at zero, so h = x at init; 2·d·m + d + m trainable parameters. ``activation`` is
    "relu", "gelu", "tanh" or a parameter-free callable; ``dtype`` and ``device`` as for ``nn.Linear``.
    ``d`` or ``bottleneck`` not an int >= 1, an unknown activation name: ValueError / TypeError naming the
    argument.
    """

    def __init__(self, d: int, bottleneck: int, activation: str | Callable = "gelu", *,
                 dtype: torch.dtype | None = None, device=None):
        super().__init__()
        raise NotImplementedError("finetune.Adapter")

    def forward(self, x):
        raise NotImplementedError("finetune.Adapter.forward")


def insert_adapters(model: nn.Module, after: Sequence[str], bottleneck: int,
                    activation: str | Callable = "gelu") -> nn.Module:
    """Put an Adapter of width ``out_features`` after each nn.Linear named in ``after`` (full module name, or
    a name ending with "." + it): that module becomes one with ``.base`` (the same layer object) and
    ``.adapter`` computing adapter(base(x)). Freeze every other parameter; return the model (changed in
    place). A name matching no module or a module that is not an nn.Linear, or a bad bottleneck, raises
    ValueError / TypeError naming the argument before the model changes."""
    raise NotImplementedError("finetune.insert_adapters")


class QLoRALinear(nn.Module):
    """LoRA on a frozen quantized copy of ``base``: h = x dequant(W_q)^T + b + (alpha / r) x A^T B^T.

    ``A`` (r, in) random and ``B`` (out, r) zero at init, trainable, in base.weight's dtype (the compute dtype);
    nothing else trains. The weight (cast to float32) is quantized in flat row-major blocks of ``block_size``
    (which must divide out·in) and only the quantized state is kept, as buffers readable on the layer:
    quant="int8-block": ``weight_q`` (out, in) int8, ``weight_scale`` (n_blocks,) float32 = absmax / 127;
    quant="nf4": ``weight_packed`` (ceil(out·in / 2),) uint8 (element 2i in the high nibble), ``absmax_q``
    (n_blocks,) int8, ``absmax_scale`` (ceil(n_blocks / 256),) float32, ``absmax_mean`` () float32 (double
    quantization). ``bias`` is the base's bias (frozen) or None. The forward pass dequantizes on the fly.
    ``merge()`` returns a plain nn.Linear with weight dequant(W_q) + (alpha / r) B A and the bias.
    Bad ``r``, ``quant``, ``block_size`` or ``base``: ValueError / TypeError naming the argument.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, quant: str = "nf4", block_size: int = 64):
        super().__init__()
        raise NotImplementedError("finetune.QLoRALinear")

    def forward(self, x):
        raise NotImplementedError("finetune.QLoRALinear.forward")

    def merge(self) -> nn.Linear:
        raise NotImplementedError("finetune.QLoRALinear.merge")


def apply_qlora(model: nn.Module, targets: Sequence[str], r: int, alpha: float, quant: str = "nf4",
                block_size: int = 64) -> nn.Module:
    """Replace every nn.Linear named in ``targets`` (full name or "." + suffix) by a QLoRALinear; freeze every
    other parameter; return the model (changed in place). Bad targets or arguments raise ValueError /
    TypeError naming the argument before the model changes."""
    raise NotImplementedError("finetune.apply_qlora")
