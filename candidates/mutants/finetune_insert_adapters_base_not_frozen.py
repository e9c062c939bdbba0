"""finetune: insert_adapters leaves the pretrained parameters trainable."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_insert_adapters_only_adapters_train",
]

finetune = patch(edit_source(ref, [
    ('    model.requires_grad_(False)\n'
     '    for (name, layer), adapter in zip',
     '    for (name, layer), adapter in zip'),
]))
