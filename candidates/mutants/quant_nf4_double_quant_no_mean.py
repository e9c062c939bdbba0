"""quant: NF4 double quantization without subtracting the mean of the block constants first."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = ["test_nf4_double_quant_matches_formula"]


def nf4_quantize(x, block_size=64, double_quant=False):
    state = ref.nf4_quantize(x, block_size, double_quant=False)
    if double_quant:
        state.absmax_q, state.absmax_scale = ref.absmax_quantize(state.absmax, block_size=ref.DOUBLE_QUANT_BLOCK)
        state.absmax_mean = torch.zeros((), dtype=state.absmax.dtype)
        state.absmax = None
    return state


quant = patch(ref, nf4_quantize=nf4_quantize)
