"""quant: int8_matmul quantizes x and w with one absmax each (per tensor) instead of per row."""

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import edited

COMPONENT = "quant"
CAUGHT_BY = ["test_int8_matmul_matches_llm_int8_formula"]

quant = edited(ref, ("qx, sx = absmax_quantize(x_r, dim=-1)", "qx, sx = absmax_quantize(x_r)"),
                    ("qw, sw = absmax_quantize(w_r, dim=-1)", "qw, sw = absmax_quantize(w_r)"))
