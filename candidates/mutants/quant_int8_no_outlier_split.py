"""quant: int8_matmul ignores the threshold: outlier columns are quantized with the rest."""

import math

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = ["test_int8_matmul_matches_llm_int8_formula", "test_int8_matmul_all_outliers_is_exact_matmul",
             "test_int8_matmul_error_bounded_despite_outliers"]


def int8_matmul(x, w, threshold=6.0):
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold!r}")
    return ref.int8_matmul(x, w, threshold=math.inf)


quant = patch(ref, int8_matmul=int8_matmul)
