"""finetune: QLoRA dequantizes the NF4 block constants without adding back the mean subtracted before double quantization."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_nf4_worked_example",
    "test_qlora_equals_quantized_base_at_init",
    "test_qlora_forward_matches_dequantized_formula",
    "test_qlora_merge_equals_unmerged",
]

finetune = patch(edit_source(ref, [
    ('self.absmax_mean.to(work),',
     'torch.zeros_like(self.absmax_mean, dtype=work),'),
]))
