"""finetune: the adapter's up-projection has no bias (2·d·m + m parameters instead of 2·d·m + d + m)."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_adapter_worked_example",
    "test_adapter_trainable_count",
    "test_insert_adapters_only_adapters_train",
]

finetune = patch(edit_source(ref, [
    ('self.up = nn.Linear(bottleneck, d, dtype=dtype, device=device)',
     'self.up = nn.Linear(bottleneck, d, bias=False, dtype=dtype, device=device)'),
    ('nn.init.zeros_(self.up.bias)',
     'pass'),
]))
