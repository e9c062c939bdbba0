"""lora: the base layer's weight and bias are left trainable."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited

COMPONENT = "lora"
CAUGHT_BY = ["test_only_a_and_b_train", "test_trainable_count_is_r_times_m_plus_n", "test_trainable_count_worked_example"]

lora = edited(ref, ("        for p in base.parameters():  # the pretrained weights stay frozen\n"
                    "            p.requires_grad_(False)\n",
                    ""))
