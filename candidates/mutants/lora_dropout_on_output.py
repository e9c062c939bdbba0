"""lora: dropout applied to the whole output (base path included), not to the LoRA input."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import patch

COMPONENT = "lora"
CAUGHT_BY = ["test_dropout_only_on_lora_path"]


class LoRALinear(ref.LoRALinear):
    def forward(self, x):
        h = self.base(x)
        if not self.merged:
            h = h + self.scaling * (x @ self.A.T @ self.B.T)
        return self.dropout(h)


lora = patch(ref, LoRALinear=LoRALinear)
