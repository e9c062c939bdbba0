"""finetune: the adapter applies its nonlinearity after the up-projection, f(W_up W_down x), not between the projections."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_adapter_worked_example",
    "test_adapter_matches_formula",
    "test_insert_adapters_matches_formula",
]

finetune = patch(edit_source(ref, [
    ('return x + self.up(self.activation(self.down(x)))',
     'return x + self.activation(self.up(self.down(x)))'),
]))
