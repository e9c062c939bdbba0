"""quant: codes use the exact float zero point, but the stored zero_point is truncated toward zero."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = [
    "test_zeropoint_zero_is_exact",
    "test_zeropoint_codes_match_formula",
    "test_zeropoint_error_at_most_half_step",
    "test_zeropoint_codes_span_int8_range",
]


def zeropoint_quantize(x, block_size=None):
    blocks = ref._to_blocks(x, block_size) if block_size is not None else x.reshape(1, -1)
    valid = (torch.arange(blocks.numel()) < x.numel()).reshape(blocks.shape)
    lo = torch.where(valid, blocks, 0).amin(dim=1).clamp(max=0)
    hi = torch.where(valid, blocks, 0).amax(dim=1).clamp(min=0)
    scale = (hi - lo) / 255
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    zp_exact = -128 - lo / safe  # not rounded
    codes = torch.round(blocks / safe[:, None] + zp_exact[:, None]).clamp(-128, 127).to(torch.int8)
    zero_point = zp_exact.to(torch.int32)  # the cast truncates
    q = ref._from_blocks(codes, x.shape)
    if block_size is None:
        return q, scale[0], zero_point[0]
    return q, scale, zero_point


quant = patch(ref, zeropoint_quantize=zeropoint_quantize)
