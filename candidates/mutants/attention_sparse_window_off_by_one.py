"""attention: efficient sliding window lists offsets -(w-1)..w-2 (range end off by one): the key i + w - 1 is dropped."""

import types

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import efficient


def _sliding_window_table(T, window, causal=False):
    last = 0 if causal else window - 2
    offsets = torch.arange(-(window - 1), last + 1)
    idx = torch.arange(T)[:, None] + offsets[None, :]
    valid = (idx >= 0) & (idx < T)
    return idx.clamp(0, T - 1), valid, []


COMPONENT = "attention"
CAUGHT_BY = ["test_sparse_equals_dense_under_its_mask", "test_sparse_bad_arguments_raise"]

sparse = types.FunctionType(efficient.sparse.__code__, {**efficient.sparse.__globals__,
                            "TABLES": {**efficient.TABLES, "sliding_window": _sliding_window_table}}, "sparse")
attention = patch(ref, sparse=sparse)
