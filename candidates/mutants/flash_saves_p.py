"""flash: the backward saves the full attention matrix P instead of recomputing it."""

import torch

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ['test_backward_saves_no_score_matrix']


def _probabilities(q, k, causal, scale):
    """P = softmax(scale · q kᵀ), (B, H, Tq, Tk): what the mutant keeps for the backward."""
    s = scale * q @ k.transpose(-1, -2)
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1)


flash = edited(ref, ('ctx.save_for_backward(q, k, v, o, lse)',
                     'ctx.save_for_backward(q, k, v, o, lse, _probabilities(q, k, causal, scale))'),
                    ('q, k, v, o, lse = ctx.saved_tensors',
                     'q, k, v, o, lse, _p = ctx.saved_tensors'),
                    _probabilities=_probabilities)
