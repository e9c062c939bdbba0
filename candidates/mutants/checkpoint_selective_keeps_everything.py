"""checkpoint: checkpoint_selective ignores recompute and keeps every saved tensor (no memory saved)."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import patch

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_option2_keeps_all_but_attention_matrices", "test_selective_recompute_everything_keeps_nothing"]


def checkpoint_selective(block, x, recompute):
    if not callable(recompute):
        raise TypeError("recompute must be callable")
    return block(x)  # bug: the predicate is never consulted


checkpoint = patch(ref, checkpoint_selective=checkpoint_selective)
