"""accounting: checkpoint option 1 keeps every layer's rematerialized graph, L (12 dT + N_heads T^2), not one."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_checkpoint_memory_formula", "test_checkpoint_option1_against_saved_tensors"]


def checkpoint_memory(d, L, T, V, n_heads=1, B=1, option=1):
    if option == 1:
        ref.checkpoint_memory(d, L, T, V, n_heads, B, option)  # argument checks
        return B * (L * d * T + L * (12 * d * T + n_heads * T * T))  # bug: one block at a time is the point
    return ref.checkpoint_memory(d, L, T, V, n_heads, B, option)


accounting = patch(ref, checkpoint_memory=checkpoint_memory)
