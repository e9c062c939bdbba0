"""accounting: graph_memory counts one T x T matrix a layer (L T^2), not one a head (L N_heads T^2)."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import edited

COMPONENT = "accounting"
CAUGHT_BY = ["test_graph_memory_formula", "test_graph_memory_against_saved_tensors"]

accounting = edited(ref, ("return B * (12 * L * d * T + L * H * T * T + 2 * V * T)",
                          "return B * (12 * L * d * T + L * T * T + 2 * V * T)  # the H of L H T^2 is missing"))
