"""quant: codes truncated toward zero (a plain int cast) instead of rounded to nearest."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = [
    "test_absmax_worked_example",
    "test_codes_match_absmax_formula",
    "test_error_at_most_half_step",
    "test_bad_arguments_raise_value_error",
    "test_blockwise_worked_example_outlier",
    "test_integer_input_raises_type_error",
    "test_largest_entry_maps_to_127",
]


def _codes(x, absmax):
    c = 127 / torch.where(absmax > 0, absmax, torch.ones_like(absmax))
    return (c * x).to(torch.int8)  # the cast truncates


def absmax_quantize(x, block_size=None, dim=None):
    if block_size is not None:
        blocks = ref._to_blocks(x, block_size)
        absmax = blocks.abs().amax(dim=1)
        return ref._from_blocks(_codes(blocks, absmax[:, None]), x.shape), absmax / 127
    absmax = x.abs().amax(dim=dim, keepdim=True) if dim is not None else x.abs().amax()
    return _codes(x, absmax), absmax / 127


quant = patch(ref, absmax_quantize=absmax_quantize)
