"""quant: int8_matmul checks threshold < 0 instead of threshold <= 0, so threshold=0 (every column an outlier) is accepted."""

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import edited

COMPONENT = "quant"
CAUGHT_BY = ["test_int8_matmul_bad_arguments_raise"]

quant = edited(ref, ("or not threshold > 0:", "or threshold < 0:  # 0 passes"))
