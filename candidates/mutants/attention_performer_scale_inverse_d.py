"""attention: Performer features of x / sqrt(D) instead of x / D^(1/4): it estimates exp(q·k / D), not exp(q·k / sqrt(D))."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = ["test_performer_error_shrinks_as_features_grow"]


def performer(q, k, v, n_features, seed, causal=False):
    shrink = q.shape[-1] ** -0.25  # applied once more inside: x / D^(1/2) in all
    return ref.performer(q * shrink, k * shrink, v, n_features, seed, causal=causal)


attention = patch(ref, performer=performer)
