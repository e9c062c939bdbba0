"""quant: `dim` read as the dimension to keep (absmax over all the others) instead of the one reduced."""

import reference.quant as ref
from candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = ["test_codes_match_absmax_formula", "test_scale_is_absmax_over_127", "test_outlier_changes_only_its_group"]


def absmax_quantize(x, block_size=None, dim=None):
    if dim is None:
        return ref.absmax_quantize(x, block_size=block_size)
    others = [d for d in range(x.dim()) if d != dim % x.dim()]
    absmax = x.abs().amax(dim=others, keepdim=True) if others else x.abs()
    return ref._round_codes(x, absmax), absmax / 127


def absmax_dequantize(q, scale, block_size=None, dim=None):
    return q.to(scale.dtype) * scale


quant = patch(ref, absmax_quantize=absmax_quantize, absmax_dequantize=absmax_dequantize)
