"""lora: the base layer's weight and bias are left trainable."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import patch

COMPONENT = "lora"
CAUGHT_BY = ["test_only_a_and_b_train", "test_trainable_count_is_r_times_m_plus_n", "test_trainable_count_worked_example"]


class LoRALinear(ref.LoRALinear):
    def __init__(self, base, r, alpha, dropout=0.0):
        super().__init__(base, r, alpha, dropout)
        base.requires_grad_(True)


lora = patch(ref, LoRALinear=LoRALinear)
