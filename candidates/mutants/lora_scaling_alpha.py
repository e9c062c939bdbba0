"""lora: update scaled by alpha instead of alpha / r."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited

COMPONENT = "lora"
CAUGHT_BY = [
    "test_worked_example",
    "test_matches_formula",
    "test_merge_equals_unmerged",
    "test_gradients_of_a_and_b",
    "test_agrees_with_peft",
]

lora = edited(ref, ("self.scaling = self.alpha / r", "self.scaling = self.alpha  # forgot the / r"))
