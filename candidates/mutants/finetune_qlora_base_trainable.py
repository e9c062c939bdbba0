"""finetune: QLoRA trains the base: its dequantized weight is kept as a trainable parameter and used in the forward pass."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_stored_bits_per_weight",
    "test_qlora_only_a_and_b_train",
    "test_apply_qlora_wraps_only_targets",
    "test_qlora_training_matches_lora_on_dequantized",
]

finetune = patch(edit_source(ref, [
    ('        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())\n',
     '        self.register_buffer("bias", None if base.bias is None else base.bias.detach().clone())\n'
     '        self.weight = nn.Parameter(self.dequantized_weight())\n'),
    ('return F.linear(x, self.dequantized_weight(), self.bias)',
     'return F.linear(x, self.weight, self.bias)'),
]))
