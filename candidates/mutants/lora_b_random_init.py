"""lora: B initialised randomly like A (the layer no longer equals the base at init)."""

import math

from torch import nn

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import patch

COMPONENT = "lora"
CAUGHT_BY = [
    "test_identity_at_init",
    "test_a_random_b_zero_at_init",
    "test_dropout_only_on_lora_path",
    "test_apply_lora_identity_at_init",
    "test_apply_lora_bad_targets_raise",
]


class LoRALinear(ref.LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__(base, r, alpha, dropout)
        nn.init.kaiming_uniform_(self.B, a=math.sqrt(5))


def apply_lora(model, targets, r, alpha):
    chosen = [(name, m) for name, m in model.named_modules() if name and any(ref._matches(name, t) for t in targets)]
    if not chosen or not all(isinstance(m, nn.Linear) for _, m in chosen):
        raise ValueError(f"bad targets {targets!r}")
    model.requires_grad_(False)
    for name, module in chosen:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, LoRALinear(module, r, alpha))
    return model


lora = patch(ref, LoRALinear=LoRALinear, apply_lora=apply_lora)
