"""lora from peft: ``LoRALinear`` wraps peft's own LoRA ``Linear`` layer, ``apply_lora`` is peft's
``inject_adapter_in_model`` with each injected layer exposed through the same wrapper.

Where peft differs from the contract, this module bridges it (and says so):
- peft calls the adapter "default" and keeps A and B in ``lora_A["default"].weight`` and
  ``lora_B["default"].weight``: ``A`` and ``B`` here are those very parameters;
- peft warns and does nothing on a second ``merge()`` or ``unmerge()``: here it is silent;
- peft raises only when *no* target matches; the contract wants an error for *every* unmatched target,
  so targets are checked here first, with peft's own matching rule (full name or "." + suffix);
- peft's layer freezes nothing by itself (``get_peft_model`` does that for the whole model): the wrapper
  freezes the base layer.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import nn


def _peft():
    import peft  # imported on first use: the candidate loads (and reports missing features) without it

    return peft


class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0, *, _layer=None):
        super().__init__()
        if _layer is None:
            if not isinstance(base, nn.Linear):
                raise TypeError(f"base must be a torch.nn.Linear, got {type(base).__name__}")
            if not isinstance(r, int) or isinstance(r, bool) or r < 1:
                raise ValueError(f"r must be an int >= 1, got {r!r}")
            if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
                raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
            peft = _peft()
            config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout)
            _layer = peft.tuners.lora.layer.Linear(base, "default", config=config, r=r, lora_alpha=alpha,
                                                   lora_dropout=dropout)
            _layer.base_layer.requires_grad_(False)
        self.layer = _layer

    @property
    def base(self) -> nn.Linear:
        return self.layer.base_layer

    @property
    def A(self) -> nn.Parameter:  # (r, in)
        return self.layer.lora_A["default"].weight

    @property
    def B(self) -> nn.Parameter:  # (out, r)
        return self.layer.lora_B["default"].weight

    @property
    def merged(self) -> bool:
        return bool(self.layer.merged)

    def forward(self, x):
        return self.layer(x)

    def merge(self) -> None:
        if not self.merged:
            self.layer.merge()

    def unmerge(self) -> None:
        if self.merged:
            self.layer.unmerge()


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def apply_lora(model: nn.Module, targets: Sequence[str], r: int, alpha: float) -> nn.Module:
    if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"targets must be a non-empty sequence of module names, got {targets!r}")
    if not isinstance(r, int) or isinstance(r, bool) or r < 1:
        raise ValueError(f"r must be an int >= 1, got {r!r}")
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
    names = [name for name, _ in model.named_modules() if name]
    unmatched = [t for t in targets if not any(_matches(name, t) for name in names)]
    if unmatched:
        raise ValueError(f"targets {unmatched!r} match no module of the model")
    for name, module in model.named_modules():
        if name and any(_matches(name, t) for t in targets) and not isinstance(module, nn.Linear):
            raise TypeError(f"targets: module {name!r} is a {type(module).__name__}, not an nn.Linear")
    peft = _peft()
    config = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=list(targets))
    model = peft.inject_adapter_in_model(config, model)
    injected = [(name, m) for name, m in model.named_modules() if isinstance(m, peft.tuners.lora.layer.Linear)]
    for name, layer in injected:  # the contract's view (A, B, merge, unmerge) on peft's layers
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoRALinear(layer.base_layer, r, alpha, _layer=layer))
    return model
