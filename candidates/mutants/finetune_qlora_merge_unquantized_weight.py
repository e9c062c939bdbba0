"""finetune: QLoRA's merge() adds B A to the unquantized pretrained weight (kept aside) instead of dequant(W_q)."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_worked_example",
    "test_qlora_merge_equals_unmerged",
    "test_qlora_agrees_with_peft",
]

finetune = patch(edit_source(ref, [
    ('        w = base.weight.detach().float()  # (out, in), quantized from float32\n',
     '        w = base.weight.detach().float()  # (out, in), quantized from float32\n'
     '        self.unquantized = base.weight.detach().clone()  # a plain attribute: not in buffers()\n'),
    ('merged.weight.copy_(self.base.dequantized_weight() + self.delta_weight())',
     'merged.weight.copy_(self.base.unquantized + self.delta_weight())'),
]))
