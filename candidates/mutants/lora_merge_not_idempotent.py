"""lora: merge() adds the update again on every call (no check of the merged flag)."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited

COMPONENT = "lora"
CAUGHT_BY = ["test_merge_and_unmerge_are_idempotent"]

lora = edited(ref, ("        if not self.merged:\n"
                    "            self.base.weight += self.delta_weight()\n"
                    "            self.merged = True\n",
                    "        self.base.weight += self.delta_weight()  # merged already or not\n"
                    "        self.merged = True\n"))
