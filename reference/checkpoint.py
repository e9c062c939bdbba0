"""Checkpointing with rematerialization (lecture 003, "The Reverse Mode of AD, with Checkpointing" and
"Checkpointing (B = 1 case)"; Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost").

A chain z_{t+1} = f_t(z_t) of n blocks. Reverse mode keeps every block's graph: memory n (in units of one
block's saved activations). With checkpoint indexes C = {tau_1 < ... < tau_k}:

    forward:   compute f and store only {z_tau : tau in C}   (the inputs of k segments, no graph)
    backward:  for i = k .. 1:
                   rematerialize: redo the forward of segment i from z_{tau_i}, storing its graph
                   backward through segment i, from tau_{i+1} down to tau_i

Memory: k checkpoints + the graph of the longest segment, k + ceil(n / k) in the lecture's units (every
z_t the same size as one block's graph), smallest at k = sqrt(n): 2 sqrt(n) instead of n. Compute: each
block's forward runs twice ("at most the cost to compute f"). Randomness (dropout) must be replayed:
the recomputation restores the random state the segment first ran with, so it draws the same masks.

The lecture's option 2 for a transformer keeps everything except the T x T attention matrices and
recomputes only those (``checkpoint_selective`` with a predicate on the saved tensors).

Worked example: ``plan(16) == [0, 4, 8, 12]`` (4 segments of 4 blocks: memory 4 + 4 = 8 instead of 16);
``plan(10) == [0, 4, 7]``; ``plan(16, memory_budget=9) == [0, 6, 11]`` (2 segments need 2 + 8 = 10 > 9;
3 segments need 3 + 6 = 9).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
from torch import nn


# ---------------------------------------------------------------------------------------------- the plan
def plan(n_blocks: int, memory_budget: float | None = None) -> list[int]:
    """Checkpoint indexes: the first block of each segment, ``[0, tau_2, ..., tau_k]``.

    Segments are as equal as possible, the first ``n_blocks % k`` one block longer. Without a budget
    k = round(sqrt(n_blocks)), which minimizes ``plan_memory``. With a budget (in units of one block's
    saved activations), the fewest segments whose memory fits (Chen et al.'s greedy choice: the longest
    segments the budget allows); ValueError when no plan fits.
    """
    if not isinstance(n_blocks, int) or isinstance(n_blocks, bool) or n_blocks < 1:
        raise ValueError(f"n_blocks must be an int >= 1, got {n_blocks!r}")
    if memory_budget is None:
        return _boundaries(n_blocks, max(1, round(math.sqrt(n_blocks))))
    if not isinstance(memory_budget, (int, float)) or isinstance(memory_budget, bool) or not memory_budget > 0:
        raise ValueError(f"memory_budget must be a number > 0, got {memory_budget!r}")
    for k in range(1, n_blocks + 1):
        if k + math.ceil(n_blocks / k) <= memory_budget:
            return _boundaries(n_blocks, k)
    best = min(k + math.ceil(n_blocks / k) for k in range(1, n_blocks + 1))
    raise ValueError(f"memory_budget={memory_budget!r} is below the least memory of any plan for "
                     f"{n_blocks} blocks ({best})")


def plan_memory(boundaries: Sequence[int], n_blocks: int) -> int:
    """The lecture's memory of a plan: one stored checkpoint a segment + the graph of the longest segment."""
    ends = list(boundaries[1:]) + [n_blocks]
    return len(boundaries) + max(e - b for b, e in zip(boundaries, ends))


def _boundaries(n: int, k: int) -> list[int]:
    size, extra = divmod(n, k)  # the first `extra` segments hold size + 1 blocks
    return [i * size + min(i, extra) for i in range(k)]


def _check_segments(segments: int | Sequence[int], n: int) -> list[int]:
    if isinstance(segments, bool):
        raise TypeError(f"segments must be an int or a list of boundaries, got {segments!r}")
    if isinstance(segments, int):
        if not 1 <= segments <= n:
            raise ValueError(f"segments must be between 1 and len(blocks)={n}, got {segments}")
        return _boundaries(n, segments)
    bounds = list(segments)
    if not bounds or bounds[0] != 0 or any(a >= b for a, b in zip(bounds, bounds[1:])) or bounds[-1] >= n:
        raise ValueError(f"segments must be increasing block indexes starting at 0, below {n}; got {bounds}")
    return bounds


# ------------------------------------------------------------------------------------- random state
def _rng_state(x: torch.Tensor) -> tuple:
    cuda = torch.cuda.get_rng_state(x.device) if x.is_cuda else None
    return torch.get_rng_state(), cuda


@contextmanager
def _replay(state: tuple, x: torch.Tensor) -> Iterator[None]:
    """Run the block with the random state ``state``; the caller's state is restored afterwards."""
    cpu, cuda = state
    with torch.random.fork_rng(devices=[x.device] if x.is_cuda else []):
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, x.device)
        yield


# ------------------------------------------------------------------------------- sequential checkpointing
class _Segment(torch.autograd.Function):
    """One segment: the forward stores only its input z_tau; the backward rematerializes and differentiates.

    The parameters travel as inputs, so that autograd asks for their gradients even when x needs none.
    """

    @staticmethod
    def forward(ctx, run: Callable, x: torch.Tensor, *params: torch.Tensor) -> torch.Tensor:
        ctx.run, ctx.params, ctx.rng = run, params, _rng_state(x)
        ctx.save_for_backward(x)  # the checkpoint z_tau
        with torch.no_grad():
            return run(x)  # no graph kept

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        need_x, need_params = ctx.needs_input_grad[1], ctx.needs_input_grad[2:]
        x = x.detach().requires_grad_(need_x)
        with _replay(ctx.rng, x), torch.enable_grad():
            y = ctx.run(x)  # rematerialization: the segment's graph, with the same dropout masks
        inputs = ([x] if need_x else []) + [p for p, need in zip(ctx.params, need_params) if need]
        grads = iter(torch.autograd.grad(y, inputs, grad_out, allow_unused=True))
        grad_x = next(grads) if need_x else None
        return (None, grad_x, *(next(grads) if need else None for need in need_params))


def checkpoint_sequential(blocks: Sequence[nn.Module], x: torch.Tensor, segments: int | Sequence[int]) -> torch.Tensor:
    """``blocks[-1](...blocks[0](x))``, keeping only the input of each segment for the backward pass.

    ``segments``: a number of segments (split as ``plan`` splits) or the boundaries ``plan`` returns.
    Every segment, the last included, is rematerialized in the backward pass, last segment first.
    """
    blocks = list(blocks)
    if not blocks:
        raise ValueError("blocks must hold at least one block")
    bounds = _check_segments(segments, len(blocks))
    if not torch.is_grad_enabled():  # no backward pass will come: nothing to keep
        for block in blocks:
            x = block(x)
        return x
    for start, end in zip(bounds, bounds[1:] + [len(blocks)]):
        seg = blocks[start:end]

        def run(z: torch.Tensor, seg: list = seg) -> torch.Tensor:
            for block in seg:
                z = block(z)
            return z

        params = [p for block in seg for p in block.parameters() if p.requires_grad]
        x = _Segment.apply(run, x, *params)
    return x


# -------------------------------------------------------------------------------- selective checkpointing
class _Dropped:
    """What the graph keeps instead of a tensor chosen for recomputation: its position among the saves."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def checkpoint_selective(block: nn.Module, x: torch.Tensor, recompute: Callable[[torch.Tensor], bool]) -> torch.Tensor:
    """``block(x)``, dropping each tensor saved for backward for which ``recompute(tensor)`` is true.

    The first time the backward pass needs a dropped tensor, the block's forward is run again from ``x``
    with the same random state, and the dropped tensors are taken from it (matched by the order in which
    the forward saved them). The lecture's option 2: ``recompute = lambda t: t.shape[-2:] == (T, T)``.
    """
    if not callable(recompute):
        raise TypeError(f"recompute must be a callable Tensor -> bool, got {recompute!r}")
    if not torch.is_grad_enabled():
        return block(x)
    rng = _rng_state(x)
    dropped: set[int] = set()
    count = [0]
    cache: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor):
        i = count[0]
        count[0] += 1
        if recompute(t):
            dropped.add(i)
            return _Dropped(i)
        return t

    def rematerialize() -> None:
        seen = [0]

        def keep(t: torch.Tensor) -> None:
            if seen[0] in dropped:
                cache[seen[0]] = t.detach()
            seen[0] += 1
            # nothing of the replay's own graph is kept: a saved output held as itself would reference its
            # own grad_fn, a cycle through autograd's nodes the garbage collector cannot free
            return None

        z = x.detach().requires_grad_(x.requires_grad)
        with _replay(rng, x), torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(keep, lambda _: None):
            block(z)

    def unpack(p):
        if not isinstance(p, _Dropped):
            return p
        if p.index not in cache:
            rematerialize()
        return cache.pop(p.index)

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return block(x)
