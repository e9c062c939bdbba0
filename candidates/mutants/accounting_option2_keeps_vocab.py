"""accounting: checkpoint option 2 is graph_memory minus the attention matrices, keeping the 2 VT the lecture ignores."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import edited

COMPONENT = "accounting"
CAUGHT_BY = ["test_checkpoint_memory_formula", "test_checkpoint_option2_against_saved_tensors"]

accounting = edited(ref, ("return B * 12 * L * d * T",  # "everything but the T x T matrices", taken from the full graph
                          "return B * (12 * L * d * T + 2 * V * T)"))
