"""quant: absmax scaled to 128 instead of 127 (the largest value overflows int8 to -128)."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = [
    "test_absmax_worked_example",
    "test_codes_are_int8_within_127",
    "test_codes_match_absmax_formula",
    "test_error_at_most_half_step",
    "test_blockwise_worked_example_outlier",
    "test_largest_entry_maps_to_127",
]


def absmax_quantize(x, block_size=None, dim=None):
    q, scale = ref.absmax_quantize(x, block_size=block_size, dim=dim)
    absmax = scale * 127
    if block_size is not None:
        per = ref._to_blocks(x, block_size) / torch.where(absmax > 0, absmax, 1.0)[:, None]
        codes = ref._from_blocks(torch.round(128 * per), x.shape)
    else:
        codes = torch.round(128 * x / torch.where(absmax > 0, absmax, torch.ones_like(absmax)))
    return codes.to(torch.int16).to(torch.int8), absmax / 128  # 128 wraps around to -128


quant = patch(ref, absmax_quantize=absmax_quantize)
