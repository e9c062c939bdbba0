"""finetune: QLoRA scales the update by alpha instead of alpha / r."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_forward_matches_dequantized_formula",
    "test_qlora_gradients",
    "test_qlora_merge_equals_unmerged",
    "test_qlora_agrees_with_peft",
]

finetune = patch(edit_source(ref, [
    ('        self.base = quantized  # the float weight is dropped: only codes and constants stay\n',
     '        self.base = quantized  # the float weight is dropped: only codes and constants stay\n'
     '        self.scaling = self.alpha\n'),
]))
