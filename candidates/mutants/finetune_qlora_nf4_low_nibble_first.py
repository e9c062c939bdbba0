"""finetune: QLoRA packs the NF4 codes low nibble first (element 2i in the low four bits), unpacking them the same way."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_nf4_worked_example",
    "test_qlora_forward_matches_dequantized_formula",
    "test_qlora_state_quantizes_the_base",
    "test_qlora_merge_equals_unmerged",
]

finetune = patch(edit_source(ref, [
    ('self.register_buffer("weight_packed", state.packed)',
     'self.register_buffer("weight_packed", state.packed << 4 | state.packed >> 4)'),
    ('state = refq.NF4State(self.weight_packed,',
     'state = refq.NF4State(self.weight_packed << 4 | self.weight_packed >> 4,'),
]))
