"""gpt: the embedding does not check that the context fits the positional table (a broadcasting RuntimeError)."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_embed_bad_arguments_raise_value_error", "test_bad_input_is_rejected_before_training"]

copy = edited(ref, ("    if T > position_table.shape[0]:\n", "    if False:  # no check of the context\n"))
gpt = patch(ref, embed=copy.embed)  # the edited embed only; every other piece is the reference's own
