"""finetune: insert_adapters puts the adapter on the layer's input (width in_features) instead of its output."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_insert_adapters_only_adapters_train",
    "test_insert_adapters_matches_formula",
]

finetune = patch(edit_source(ref, [
    ('return self.adapter(self.base(x))',
     'return self.base(self.adapter(x))'),
    ('Adapter(layer.out_features, bottleneck',
     'Adapter(layer.in_features, bottleneck'),
]))
