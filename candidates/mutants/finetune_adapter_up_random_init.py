"""finetune: the adapter's up-projection weight initialised randomly like the down-projection (the model changes at init)."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_adapter_identity_at_init",
    "test_insert_adapters_identity_at_init",
]

finetune = patch(edit_source(ref, [
    ('nn.init.zeros_(self.up.weight)  # so h = x at initialisation',
     "pass  # up keeps nn.Linear's random init"),
]))
