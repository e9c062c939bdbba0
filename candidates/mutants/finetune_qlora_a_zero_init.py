"""finetune: QLoRA initialises A at zero as well as B (no gradient ever reaches either: nothing trains)."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_equals_quantized_base_at_init",
    "test_qlora_training_matches_lora_on_dequantized",
]

finetune = patch(edit_source(ref, [
    ('        self.base = quantized  # the float weight is dropped: only codes and constants stay\n',
     '        self.base = quantized  # the float weight is dropped: only codes and constants stay\n'
     '        nn.init.zeros_(self.A)\n'),
]))
