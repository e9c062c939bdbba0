"""finetune: insert_adapters and apply_qlora ignore a name that matches no module as long as another one matches."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_insert_adapters_bad_targets_raise",
    "test_apply_qlora_bad_targets_raise",
]

finetune = patch(edit_source(ref, [
    ('    if unmatched:\n'
     '        raise ValueError',
     '    if unmatched and not chosen:\n'
     '        raise ValueError'),
]))
