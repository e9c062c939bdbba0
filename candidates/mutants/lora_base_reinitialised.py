"""lora: the wrapper builds a fresh nn.Linear of the base's shape instead of keeping the pretrained weights."""

from torch import nn

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import patch

COMPONENT = "lora"
CAUGHT_BY = [
    "test_wrapping_leaves_base_weights_unchanged",
    "test_identity_at_init",
    "test_matches_formula",
    "test_agrees_with_peft",
]


class LoRALinear(ref.LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__(base, r, alpha, dropout)
        fresh = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                          dtype=base.weight.dtype, device=base.weight.device)
        self.base = fresh.requires_grad_(False)


lora = patch(ref, LoRALinear=LoRALinear)
