"""lora: merge() adds the update again on every call (no check of the merged flag)."""

import torch

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import patch

COMPONENT = "lora"
CAUGHT_BY = ["test_merge_and_unmerge_are_idempotent"]


class LoRALinear(ref.LoRALinear):
    @torch.no_grad()
    def merge(self):
        self.base.weight += self.delta_weight()
        self.merged = True


lora = patch(ref, LoRALinear=LoRALinear)
