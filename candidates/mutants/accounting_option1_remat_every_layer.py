"""accounting: checkpoint option 1 keeps every layer's rematerialized graph, L (12 dT + N_heads T^2), not one."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import edited

COMPONENT = "accounting"
CAUGHT_BY = ["test_checkpoint_memory_formula", "test_checkpoint_option1_against_saved_tensors"]

accounting = edited(ref, ("return B * (L * d * T + 12 * d * T + H * T * T)",
                          "return B * (L * d * T + L * (12 * d * T + H * T * T))  # one block at a time is the point"))
