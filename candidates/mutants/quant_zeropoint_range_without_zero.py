"""quant: zero-point range [min(x), max(x)] not widened to include 0 (zero_point overflows for one-signed data)."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = [
    "test_zeropoint_scale_is_range_over_255",
    "test_zeropoint_error_at_most_half_step",
    "test_zeropoint_codes_span_int8_range",
]


def zeropoint_quantize(x, block_size=None):
    blocks = ref._to_blocks(x, block_size) if block_size is not None else x.reshape(1, -1)
    n = x.numel()
    valid = (torch.arange(blocks.numel()) < n).reshape(blocks.shape)
    lo = torch.where(valid, blocks, torch.inf).amin(dim=1)
    hi = torch.where(valid, blocks, -torch.inf).amax(dim=1)
    scale = (hi - lo) / 255
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    zero_point = (-128 - torch.round(lo / safe)).to(torch.int8).to(torch.int32)  # stored in int8: wraps
    codes = (torch.round(blocks / safe[:, None]) + zero_point[:, None]).clamp(-128, 127).to(torch.int8)
    q = ref._from_blocks(codes, x.shape)
    if block_size is None:
        return q, scale[0], zero_point[0]
    return q, scale, zero_point


quant = patch(ref, zeropoint_quantize=zeropoint_quantize)
