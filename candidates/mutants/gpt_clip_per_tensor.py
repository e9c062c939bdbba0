"""gpt: gradients clipped tensor by tensor, each to its own norm, instead of by one global norm."""

import torch

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_clip_grad_norm_is_global", "test_debug_run_trains_like_the_reference"]


def clip_grad_norm(params, max_norm):
    grads = [p.grad for p in params if p.grad is not None]
    norms = [g.norm() for g in grads]
    for g, n in zip(grads, norms):
        g.mul_(torch.clamp(max_norm / (n + 1e-6), max=1.0))
    return torch.sqrt(sum(n ** 2 for n in norms))


gpt = patch(ref, clip_grad_norm=clip_grad_norm)
