"""bpe: byte-level training takes max() of the pair counts without checking that any pair is left, so it crashes instead of stopping early."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training as train_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_train_stops_early_when_no_pair_is_left"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("        if not stats:\n            break  # every pre-token is a single token\n", ""),
]

# the readable trainer (a recount per merge: max() of an empty dict raises ValueError once no pair is left)
bpe = patch(ref, train=edit_source(train_module, EDITS).train)
