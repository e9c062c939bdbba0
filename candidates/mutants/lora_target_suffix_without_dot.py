"""lora: apply_lora matches targets with endswith(target), so "q" also wraps "fq" and "attn.q_proj"."""

from torch import nn

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import patch

COMPONENT = "lora"
CAUGHT_BY = [
    "test_apply_lora_wraps_only_targets",
    "test_apply_lora_agrees_with_peft",
    "test_apply_lora_bad_targets_raise",
]


def apply_lora(model, targets, r, alpha):
    chosen = [(name, m) for name, m in model.named_modules()
              if name and isinstance(m, nn.Linear) and any(name.endswith(t) for t in targets)]
    if not chosen:
        raise ValueError(f"targets {targets!r} match no module")
    model.requires_grad_(False)
    for name, module in chosen:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, ref.LoRALinear(module, r, alpha))
    return model


lora = patch(ref, apply_lora=apply_lora)
