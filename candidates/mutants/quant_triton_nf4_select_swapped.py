"""quant: the NF4 dequantize kernel's select-tree lookup swaps levels 6 and 7 (-0.091 and 0), and is the one used."""

import fmspec.reference.quant as ref
import fmspec.reference.quant_triton as quant_triton
from fmspec.candidates.mutants import _triton, edited, rebind

COMPONENT = "quant"
CAUGHT_BY = ["test_kernels_match_eager_under_triton_interpreter"]
CAUGHT_BY_GPU = ["test_large_input_equals_its_pieces"]
CAPABILITIES = {"quant": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}

KERNELS = rebind(_triton.edited_kernels, ref_triton=quant_triton)(
    [("p3 = tl.where(b0, tl.load(LEVELS + 7), tl.load(LEVELS + 6))",
      "p3 = tl.where(b0, tl.load(LEVELS + 6), tl.load(LEVELS + 7))"),
     ("LOOKUP=lookup, num_warps=num_warps", 'LOOKUP="select", num_warps=num_warps')], "quant_nf4_select_swapped")
quant = edited(ref, ("from fmspec.reference import quant_triton\n    return quant_triton",
                     "return KERNELS"), KERNELS=KERNELS)
