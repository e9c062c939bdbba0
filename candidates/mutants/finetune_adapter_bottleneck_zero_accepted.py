"""finetune: a bottleneck of 0 is accepted (an adapter that can learn nothing), only negative ones raise."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_adapter_bad_arguments_raise",
    "test_insert_adapters_bad_targets_raise",
]

finetune = patch(edit_source(ref, [
    ('_check_size(bottleneck, "bottleneck")',
     'if not isinstance(bottleneck, int) or bottleneck < 0:\n'
     '            raise ValueError(f"bottleneck must be an int >= 0, got {bottleneck!r}")'),
]))
