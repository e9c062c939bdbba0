"""attention: BigBird seeds a generator but draws the random blocks from torch's global RNG (generator= not passed)."""

import types

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import masks


def _layout(n_blocks, n_random, n_window, n_global, seed):
    gen = torch.Generator().manual_seed(seed)  # noqa: F841  (created, never used)
    half, glob, rows = n_window // 2, set(range(n_global)), []
    for i in range(n_blocks):
        if i in glob:
            rows.append(list(range(n_blocks)))
            continue
        fixed = (set(range(max(0, i - half), min(n_blocks, i + half + 1))) if n_window else set()) | glob
        rest = [j for j in range(n_blocks) if j not in fixed]
        pick = torch.randperm(len(rest))[:n_random].tolist()  # bug: the global RNG, not gen
        rows.append(sorted(fixed | {rest[p] for p in pick}))
    return rows


COMPONENT = "attention"
CAUGHT_BY = ["test_bigbird_same_seed_same_mask", "test_sparse_equals_dense_under_its_mask"]

bigbird_mask = types.FunctionType(masks.bigbird_mask.__code__, {**masks.bigbird_mask.__globals__,
                                  "bigbird_layout": _layout}, "bigbird_mask")
attention = patch(ref, bigbird_mask=bigbird_mask)
