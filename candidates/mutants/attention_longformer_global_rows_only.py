"""attention: Longformer global tokens see every key (rows) but no other query sees them (no columns)."""

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = [
    "test_mask_matches_its_definition",
    "test_longformer_global_rows_and_columns_are_full",
    "test_mask_bad_arguments_raise",
]


def longformer_mask(T, window, global_idx):
    m = ref.sliding_window_mask(T, window)
    is_global = torch.zeros(T, dtype=torch.bool)
    is_global[list(global_idx)] = True
    return m | is_global[:, None]


attention = patch(ref, longformer_mask=longformer_mask)
