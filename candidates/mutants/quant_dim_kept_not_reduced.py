"""quant: `dim` read as the dimension to keep (absmax over all the others) instead of the one reduced."""

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = [
    "test_codes_match_absmax_formula",
    "test_scale_is_absmax_over_127",
    "test_outlier_changes_only_its_group",
    "test_bad_arguments_raise_value_error",
    "test_blockwise_worked_example_outlier",
    "test_dequantize_is_codes_times_scale",
    "test_largest_entry_maps_to_127",
    "test_scale_equivariance",
    "test_zero_groups_give_zeros",
]


def absmax_quantize(x, block_size=None, dim=None):
    if dim is None:
        return ref.absmax_quantize(x, block_size=block_size)
    others = [d for d in range(x.dim()) if d != dim % x.dim()]
    absmax = x.abs().amax(dim=others, keepdim=True) if others else x.abs()
    return ref._round_codes(x, absmax), absmax / 127


def absmax_dequantize(q, scale, block_size=None, dim=None):
    return q.to(scale.dtype) * scale


quant = patch(ref, absmax_quantize=absmax_quantize, absmax_dequantize=absmax_dequantize)
