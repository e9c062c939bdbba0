"""accounting: graph_memory counts one T x T matrix a layer (L T^2), not one a head (L N_heads T^2)."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_graph_memory_formula", "test_graph_memory_against_saved_tensors"]


def graph_memory(d, L, T, V, n_heads=1, B=1):
    ref.graph_memory(d, L, T, V, n_heads, B)  # argument checks
    return B * (12 * L * d * T + L * T * T + 2 * V * T)  # bug: the H of L H T^2 is missing


accounting = patch(ref, graph_memory=graph_memory)
