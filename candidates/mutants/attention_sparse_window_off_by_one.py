"""attention: efficient sliding window lists offsets -(w-1)..w-2 (range end off by one): the key i + w - 1 is dropped."""

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch, rebind
from fmspec.reference.attention import efficient

COMPONENT = "attention"
CAUGHT_BY = ["test_sparse_equals_dense_under_its_mask", "test_sparse_bad_arguments_raise"]


def _sliding_window_table(T, window, causal=False):
    last = 0 if causal else window - 2
    offsets = torch.arange(-(window - 1), last + 1)
    idx = torch.arange(T)[:, None] + offsets[None, :]
    valid = (idx >= 0) & (idx < T)
    return idx.clamp(0, T - 1), valid, []


attention = patch(ref, sparse=rebind(efficient.sparse, TABLES={**efficient.TABLES, "sliding_window": _sliding_window_table}))
