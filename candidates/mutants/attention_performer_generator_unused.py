"""attention: Performer seeds a generator but draws its features from torch's global RNG (generator= not passed)."""

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import kernel

COMPONENT = "attention"
CAUGHT_BY = ["test_performer_is_seeded", "test_causal_outputs_ignore_future_keys"]


def performer(q, k, v, n_features, seed, causal=False):
    ref.performer(q, k, v, n_features, seed, causal)  # argument checks
    gen = torch.Generator().manual_seed(seed)  # noqa: F841  (created, never used)
    omega = torch.randn(n_features, q.shape[-1], dtype=torch.float64).to(q.dtype).to(q.device)  # bug: no generator=gen
    shrink = q.shape[-1] ** -0.25
    fq = kernel.positive_features(q * shrink, omega, per_row=True)
    fk = kernel.positive_features(k * shrink, omega, per_row=False)
    return kernel.kernel_attention(fq, fk, v, causal)


attention = patch(ref, performer=performer)
