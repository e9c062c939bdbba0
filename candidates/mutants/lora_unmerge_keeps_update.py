"""lora: unmerge() only clears the flag; W keeps the merged update (applied twice afterwards)."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited

COMPONENT = "lora"
CAUGHT_BY = ["test_unmerge_restores_base", "test_merge_and_unmerge_are_idempotent"]

lora = edited(ref, ("            self.base.weight -= self.delta_weight()\n", ""))
