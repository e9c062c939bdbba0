"""attention: BigBird random blocks drawn only from the past (blocks before the row), not the whole sequence."""

import types

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import masks


def _layout(n_blocks, n_random, n_window, n_global, seed):
    rows = masks.bigbird_layout(n_blocks, 0, n_window, n_global, seed)
    gen = torch.Generator().manual_seed(seed)
    for i in range(n_global, n_blocks):
        rest = [j for j in range(i) if j not in rows[i]]  # the past only
        pick = torch.randperm(len(rest), generator=gen)[:n_random].tolist()
        rows[i] = sorted(set(rows[i]) | {rest[p] for p in pick})
    return rows


COMPONENT = "attention"
CAUGHT_BY = ["test_bigbird_figure_worked_example", "test_bigbird_mask_is_blocked_window_global_random",
             "test_bigbird_random_blocks_come_from_whole_sequence"]

bigbird_mask = types.FunctionType(masks.bigbird_mask.__code__, {**masks.bigbird_mask.__globals__,
                                  "bigbird_layout": _layout}, "bigbird_mask")
attention = patch(ref, bigbird_mask=bigbird_mask)
