"""accounting: graph_memory keeps VT for the vocabulary, not 2VT (the one-hot input forgotten; the slide's first version)."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_graph_memory_formula", "test_graph_memory_against_saved_tensors"]


def graph_memory(d, L, T, V, n_heads=1, B=1):
    ref.graph_memory(d, L, T, V, n_heads, B)  # argument checks
    return B * (12 * L * d * T + L * n_heads * T * T + V * T)  # bug: VT, not 2VT


accounting = patch(ref, graph_memory=graph_memory)
