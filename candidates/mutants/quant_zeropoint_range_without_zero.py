"""quant: zero-point range [min(x), max(x)] not widened to include 0 (zero_point overflows for one-signed data)."""

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import edited

COMPONENT = "quant"
CAUGHT_BY = [
    "test_zeropoint_scale_is_range_over_255",
    "test_zeropoint_error_at_most_half_step",
    "test_zeropoint_codes_span_int8_range",
]

quant = edited(ref, ("lo = torch.where(valid, blocks, 0).amin(dim=1).clamp(max=0)",
                     "lo = torch.where(valid, blocks, torch.inf).amin(dim=1)"),
                    ("hi = torch.where(valid, blocks, 0).amax(dim=1).clamp(min=0)",
                     "hi = torch.where(valid, blocks, -torch.inf).amax(dim=1)"),
                    ("zero_point = (-128 - torch.round(lo / safe)).to(torch.int32)",
                     "zero_point = (-128 - torch.round(lo / safe)).to(torch.int8).to(torch.int32)  # stored in int8: wraps"))
