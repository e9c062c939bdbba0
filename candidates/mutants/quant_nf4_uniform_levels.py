"""quant: NF4 with 16 evenly spaced levels (plain int4) instead of normal quantiles."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = [
    "test_nf4_levels_reproduced_exactly",
    "test_nf4_rounds_to_nearest_level",
    "test_nf4_bad_block_size_raises",
    "test_nf4_zero_blocks_give_zeros",
]

LEVELS = torch.linspace(-1, 1, 16, dtype=torch.float64)


def nf4_quantize(x, block_size=64, double_quant=False):
    blocks = ref._to_blocks(x, block_size)
    absmax = blocks.abs().amax(dim=1)
    normed = blocks / torch.where(absmax > 0, absmax, torch.ones_like(absmax))[:, None]
    codes = (normed.double()[..., None] - LEVELS).abs().argmin(-1)
    return x.shape, x.dtype, codes, absmax


def nf4_dequantize(state):
    shape, dtype, codes, absmax = state
    return ref._from_blocks(LEVELS[codes] * absmax.double()[:, None], shape).to(dtype)


quant = patch(ref, nf4_quantize=nf4_quantize, nf4_dequantize=nf4_dequantize)
