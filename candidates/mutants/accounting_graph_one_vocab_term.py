"""accounting: graph_memory keeps VT for the vocabulary, not 2VT (the one-hot input forgotten; the slide's first version)."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import edited

COMPONENT = "accounting"
CAUGHT_BY = ["test_graph_memory_formula", "test_graph_memory_against_saved_tensors"]

accounting = edited(ref, ("return B * (12 * L * d * T + L * H * T * T + 2 * V * T)",
                          "return B * (12 * L * d * T + L * H * T * T + V * T)  # VT, not 2VT"))
