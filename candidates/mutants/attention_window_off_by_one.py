"""attention: sliding window |i - j| <= window instead of < window (one key too many on each side)."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = [
    "test_mask_matches_its_definition",
    "test_sliding_window_counts_per_row",
    "test_mask_bad_arguments_raise",
]


def sliding_window_mask(T, window, causal=False):
    return ref.sliding_window_mask(T, window + 1, causal)


attention = patch(ref, sliding_window_mask=sliding_window_mask)
