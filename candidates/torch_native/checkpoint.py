"""checkpoint from ``torch.utils.checkpoint`` (non-reentrant, random state preserved).

Differences from the contract (docs/spec/checkpoint.md), and what this module does about them:

- ``torch.utils.checkpoint.checkpoint_sequential`` splits n blocks into segments of n // k blocks (the
  last takes the rest) and runs the last segment without checkpointing (it keeps its graph, so that
  segment is not recomputed). The contract follows the lecture: balanced segments, the longer ones
  first, and every segment, the last included, stored as its input only and rematerialized. So
  ``checkpoint_sequential`` here calls ``torch.utils.checkpoint.checkpoint`` once per segment.
- ``checkpoint_selective`` is left out (missing): torch's selective activation checkpointing
  (``create_selective_checkpoint_contexts``) decides per operator, before its output exists, and
  caches what it keeps outside autograd's saved tensors; the contract decides per saved tensor.
- ``plan`` is left out (missing): torch has no schedule chooser.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


def _boundaries(n: int, segments: int | Sequence[int]) -> list[int]:
    if isinstance(segments, bool):
        raise TypeError(f"segments must be an int or a list of boundaries, got {segments!r}")
    if isinstance(segments, int):
        if not 1 <= segments <= n:
            raise ValueError(f"segments must be between 1 and len(blocks)={n}, got {segments}")
        size, extra = divmod(n, segments)
        return [i * size + min(i, extra) for i in range(segments)]
    bounds = list(segments)
    if not bounds or bounds[0] != 0 or any(a >= b for a, b in zip(bounds, bounds[1:])) or bounds[-1] >= n:
        raise ValueError(f"segments must be increasing block indexes starting at 0, below {n}; got {bounds}")
    return bounds


def checkpoint_sequential(blocks: Sequence[nn.Module], x: torch.Tensor, segments: int | Sequence[int]) -> torch.Tensor:
    blocks = list(blocks)
    if not blocks:
        raise ValueError("blocks must hold at least one block")
    bounds = _boundaries(len(blocks), segments)
    if not torch.is_grad_enabled():
        for block in blocks:
            x = block(x)
        return x
    for start, end in zip(bounds, bounds[1:] + [len(blocks)]):
        def run(z: torch.Tensor, seg: list = blocks[start:end]) -> torch.Tensor:
            for block in seg:
                z = block(z)
            return z

        x = checkpoint(run, x, use_reentrant=False, preserve_rng_state=True)
    return x
