"""lora: dropout applied to the LoRA path's output (elementwise after B), not to its input."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited

COMPONENT = "lora"
CAUGHT_BY = ["test_dropout_only_on_lora_path"]

lora = edited(ref, ("return h + self.scaling * (self.dropout(x) @ self.A.T @ self.B.T)",
                    "return h + self.dropout(self.scaling * (x @ self.A.T @ self.B.T))"))
