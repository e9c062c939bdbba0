"""checkpoint: rematerialization, sequential and selective, and the sqrt(L) plan. Spec: docs/spec/checkpoint.md."""

from typing import Callable, Sequence

import torch
from torch import nn


def checkpoint_sequential(blocks: Sequence[nn.Module], x: torch.Tensor, segments: int | Sequence[int]) -> torch.Tensor:
    """``blocks[-1](...blocks[0](x))``, keeping only the input of each segment for the backward pass.

    ``segments`` is a number k of segments (1 <= k <= len(blocks); the first len(blocks) % k segments one
    block longer) or a list of boundaries as ``plan`` returns them (increasing, from 0). The backward pass
    redoes each segment's forward once, last segment first, with the random state (dropout) it first ran
    with, and gives the same input and parameter gradients as no checkpointing, also when x needs no
    gradient. Bad ``segments`` raise ValueError naming it.
    """
    raise NotImplementedError("checkpoint.checkpoint_sequential")


def checkpoint_selective(block: nn.Module, x: torch.Tensor, recompute: Callable[[torch.Tensor], bool]) -> torch.Tensor:
    """``block(x)``, keeping every tensor autograd saves for backward except those for which
    ``recompute(tensor)`` is true; the backward pass rematerializes those (same random state).

    The lecture's option 2 is ``recompute = lambda t: t.shape[-2:] == (T, T)`` (the attention matrices).
    A ``recompute`` that is not callable raises TypeError naming it.
    """
    raise NotImplementedError("checkpoint.checkpoint_selective")


def plan(n_blocks: int, memory_budget: float | None = None) -> list[int]:
    """Checkpoint indexes: the first block of each segment, ``[0, ...]``.

    Memory of a plan (units of one block's saved activations) = number of segments + longest segment.
    Without a budget: k = round(sqrt(n_blocks)) balanced segments (the first n_blocks % k one block longer).
    With a budget: the fewest balanced segments whose memory fits; ValueError naming memory_budget when
    none fits. ``n_blocks`` not an int >= 1 raises ValueError naming it.
    """
    raise NotImplementedError("checkpoint.plan")
