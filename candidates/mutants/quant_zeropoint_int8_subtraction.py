"""quant: zeropoint_dequantize subtracts the zero point in int8, so q - zero_point wraps around past 127."""

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import edited

COMPONENT = "quant"
CAUGHT_BY = ["test_zeropoint_worked_example"]

quant = edited(ref, ("(q.to(torch.int32) - zero_point.to(torch.int32))", "(q - zero_point.to(torch.int8))"),
                    ("blocks = _to_blocks(q.to(torch.int32), block_size)", "blocks = _to_blocks(q, block_size)"),
                    ("zero_point[:, None].to(torch.int32)", "zero_point[:, None].to(torch.int8)"))
