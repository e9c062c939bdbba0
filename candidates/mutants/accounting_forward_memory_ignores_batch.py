"""accounting: forward_memory ignores the batch size B."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_forward_memory_formula", "test_memory_scales_with_batch", "test_forward_memory_sums_largest_intermediates"]


def forward_memory(d, T, V, n_heads=1, B=1):
    return ref.forward_memory(d, T, V, n_heads, 1)  # bug: B dropped


accounting = patch(ref, forward_memory=forward_memory)
