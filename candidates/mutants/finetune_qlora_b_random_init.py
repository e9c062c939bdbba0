"""finetune: QLoRA initialises B randomly like A (the layer is not the quantized base at init)."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_equals_quantized_base_at_init",
    "test_apply_qlora_wraps_only_targets",
]

finetune = patch(edit_source(ref, [
    ('        self.base = quantized  # the float weight is dropped: only codes and constants stay\n',
     '        self.base = quantized  # the float weight is dropped: only codes and constants stay\n'
     '        nn.init.kaiming_uniform_(self.B, a=5 ** 0.5)\n'),
]))
