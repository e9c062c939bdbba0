"""quant: codes use the exact float zero point, but the stored zero_point is truncated toward zero."""

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import edited

COMPONENT = "quant"
CAUGHT_BY = [
    "test_zeropoint_zero_is_exact",
    "test_zeropoint_codes_match_formula",
    "test_zeropoint_error_at_most_half_step",
    "test_zeropoint_codes_span_int8_range",
]

quant = edited(ref, ("zero_point = (-128 - torch.round(lo / safe)).to(torch.int32)",
                     "zero_point = -128 - lo / safe  # not rounded"),
                    ("codes = torch.round(blocks / safe[:, None]) + zero_point[:, None]\n",
                     "codes = torch.round(blocks / safe[:, None] + zero_point[:, None])\n"
                     "    zero_point = zero_point.to(torch.int32)  # the cast truncates\n"))
