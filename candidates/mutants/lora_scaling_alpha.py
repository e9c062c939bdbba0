"""lora: update scaled by alpha instead of alpha / r."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import patch

COMPONENT = "lora"
CAUGHT_BY = [
    "test_worked_example",
    "test_matches_formula",
    "test_merge_equals_unmerged",
    "test_gradients_of_a_and_b",
    "test_agrees_with_peft",
]


class LoRALinear(ref.LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__(base, r, alpha, dropout)
        self.scaling = self.alpha  # forgot the / r


lora = patch(ref, LoRALinear=LoRALinear)
