"""quant: absmax_quantize rounds stochastically, floor(c·x + U[0, 1)) from one generator seeded at import, not to nearest."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch, rebind

COMPONENT = "quant"
CAUGHT_BY = [
    "test_absmax_worked_example",
    "test_blockwise_worked_example_outlier",
    "test_codes_match_absmax_formula",
    "test_error_at_most_half_step",
    "test_outlier_changes_only_its_group",
    "test_last_partial_block_has_its_own_scale",
    "test_scale_equivariance",
    "test_same_answer_when_called_twice",
]


_GEN = torch.Generator().manual_seed(0)  # seeded once: every call continues the stream


def _round_codes(x, absmax):
    c = ref.Q_MAX / torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    v = c * x
    return torch.floor(v + torch.rand(v.shape, generator=_GEN, dtype=v.dtype)).clamp(-ref.Q_MAX, ref.Q_MAX).to(torch.int8)  # bug: dithered


quant = patch(ref, absmax_quantize=rebind(ref.absmax_quantize, _round_codes=_round_codes))
