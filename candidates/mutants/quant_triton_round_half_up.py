"""quant: the Triton quantize kernel rounds with floor(v + 0.5) (half up) instead of half to even."""

import fmspec.reference.quant as ref
import fmspec.reference.quant_triton as quant_triton
from fmspec.candidates.mutants import _triton, edited, rebind

COMPONENT = "quant"
CAUGHT_BY = ["test_kernels_round_exact_ties_to_even_under_triton_interpreter"]
CAUGHT_BY_GPU = ["test_exact_ties_round_half_to_even"]
CAPABILITIES = {"quant": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}

KERNELS = rebind(_triton.edited_kernels, ref_triton=quant_triton)(
    [("return (v + ROUND_MAGIC) - ROUND_MAGIC", "return tl.floor(v + 0.5)")], "quant_round_half_up")
quant = edited(ref, ("from fmspec.reference import quant_triton\n    return quant_triton",
                     "return KERNELS"), KERNELS=KERNELS)
