"""flash: the backward saves the full attention matrix P instead of recomputing it."""

import inspect
import types

import torch

import reference.flash as ref
from candidates.mutants import patch

COMPONENT = "flash"
CAUGHT_BY = ['test_backward_saves_no_score_matrix']
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('ctx.save_for_backward(q, k, v, o, lse)',
     'ctx.save_for_backward(q, k, v, o, lse, _probabilities(q, k, causal, scale))'),
    ('q, k, v, o, lse = ctx.saved_tensors',
     'q, k, v, o, lse, _p = ctx.saved_tensors'),
]


def _probabilities(q, k, causal, scale):
    """P = softmax(scale · q kᵀ), (B, H, Tq, Tk): what the mutant keeps for the backward."""
    s = scale * q @ k.transpose(-1, -2)
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1)


def _mutate() -> types.ModuleType:
    source = inspect.getsource(ref)
    for old, new in EDITS:
        assert old in source, f"reference/flash.py no longer contains {old!r}"
        source = source.replace(old, new, 1)
    module = types.ModuleType(__name__ + "_flash")
    module.__dict__.update({k: v for k, v in globals().items() if k.startswith("_probabilities")})
    exec(compile(source, ref.__file__, "exec"), module.__dict__)
    return module


flash = patch(_mutate())
