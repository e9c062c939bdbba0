"""finetune: apply_qlora leaves the parameters outside the targets trainable."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_apply_qlora_wraps_only_targets",
]

finetune = patch(edit_source(ref, [
    ('    model.requires_grad_(False)\n'
     '    for (name, _), layer in zip',
     '    for (name, _), layer in zip'),
]))
