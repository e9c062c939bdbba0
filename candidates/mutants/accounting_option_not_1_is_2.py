"""accounting: checkpoint_memory treats every option other than 1 as option 2 instead of raising."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_bad_arguments_raise_value_error"]


def checkpoint_memory(d, L, T, V, n_heads=1, B=1, option=1):
    if option == 1:
        return ref.checkpoint_memory(d, L, T, V, n_heads, B, 1)
    return ref.checkpoint_memory(d, L, T, V, n_heads, B, 2)  # bug: option 0, 3, ... silently mean 2


accounting = patch(ref, checkpoint_memory=checkpoint_memory)
