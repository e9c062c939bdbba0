"""accounting: checkpoint option 2 is graph_memory minus the attention matrices, keeping the 2 VT the lecture ignores."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_checkpoint_memory_formula", "test_checkpoint_option2_against_saved_tensors"]


def checkpoint_memory(d, L, T, V, n_heads=1, B=1, option=1):
    if option == 2:
        # bug: "everything but the T x T matrices" taken from the full graph, vocabulary terms included
        return ref.graph_memory(d, L, T, V, n_heads, B) - B * L * n_heads * T * T
    return ref.checkpoint_memory(d, L, T, V, n_heads, B, option)


accounting = patch(ref, checkpoint_memory=checkpoint_memory)
