"""finetune: QLoRA accepts a block size that does not divide the weights (the quantizers pad the last block silently)."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_bad_arguments_raise",
    "test_apply_qlora_bad_targets_raise",
]

finetune = patch(edit_source(ref, [
    ('        if n % block_size:\n'
     '            raise',
     '        if False:\n'
     '            raise'),
]))
