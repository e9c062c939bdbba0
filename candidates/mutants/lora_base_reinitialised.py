"""lora: the wrapper builds a fresh nn.Linear of the base's shape instead of keeping the pretrained weights."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited

COMPONENT = "lora"
CAUGHT_BY = [
    "test_wrapping_leaves_base_weights_unchanged",
    "test_identity_at_init",
    "test_matches_formula",
    "test_agrees_with_peft",
]

lora = edited(ref, ("        self.base = base\n",
                    "        base = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,\n"
                    "                         dtype=base.weight.dtype, device=base.weight.device)\n"
                    "        self.base = base\n"))
