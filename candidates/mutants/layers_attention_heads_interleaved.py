"""layers: attention backward splits heads as (B, T, Dh, H) (features strided across heads), not (B, T, H, Dh)."""

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch, rebind

COMPONENT = "layers"
CAUGHT_BY = ["test_attention_backward_matches_autograd"]


def _split(t, h):
    b, n, d = t.shape
    return t.reshape(b, n, d // h, h).permute(0, 3, 1, 2)  # head j gets features j, j + H, j + 2H, ...


def _merge(t):
    b, h, n, dh = t.shape
    return t.permute(0, 2, 3, 1).reshape(b, n, h * dh)


layers = patch(ref, attention_backward=rebind(ref.attention_backward, _split=_split, _merge=_merge))
