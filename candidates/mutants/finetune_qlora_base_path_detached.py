"""finetune: QLoRA's base path runs on a detached input: no gradient flows back through the dequantized weight."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_gradients",
    "test_qlora_training_matches_lora_on_dequantized",
]

finetune = patch(edit_source(ref, [
    ('return F.linear(x, self.dequantized_weight(), self.bias)',
     'return F.linear(x.detach(), self.dequantized_weight(), self.bias)'),
]))
