"""checkpoint: checkpoint_selective recomputes dropped tensors under a fresh random state (other dropout masks)."""

import torch

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import patch

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_selective_matches_no_checkpointing"]


def checkpoint_selective(block, x, recompute):
    if not callable(recompute):
        raise TypeError("recompute must be callable")
    dropped, count, cache = set(), [0], {}

    def pack(t):
        count[0] += 1
        if recompute(t):
            dropped.add(count[0] - 1)
            return ref._Dropped(count[0] - 1)
        return t

    def rematerialize():
        seen = [0]

        def keep(t):
            if seen[0] in dropped:
                cache[seen[0]] = t.detach()
            seen[0] += 1
            return t

        z = x.detach().requires_grad_(x.requires_grad)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            block(z)  # bug: no replay of the random state the forward pass ran with

    def unpack(p):
        if not isinstance(p, ref._Dropped):
            return p
        if p.index not in cache:
            rematerialize()
        return cache.pop(p.index)

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        return block(x)


checkpoint = patch(ref, checkpoint_selective=checkpoint_selective)
