"""quant: the Triton kernels read only whole blocks (n // B · B elements): a partial last block reads as zeros."""

import fmspec.reference.quant as ref
import fmspec.reference.quant_triton as quant_triton
from fmspec.candidates.mutants import _triton, edited, rebind

COMPONENT = "quant"
CAUGHT_BY = ["test_kernels_match_eager_under_triton_interpreter"]
CAUGHT_BY_GPU = ["test_large_input_equals_its_pieces"]
CAPABILITIES = {"quant": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}

KERNELS = rebind(_triton.edited_kernels, ref_triton=quant_triton)(
    [("x = tl.load(ptr + offs, mask=(cols[None, :] < B) & (offs < n), other=0)",
      "x = tl.load(ptr + offs, mask=(cols[None, :] < B) & (offs < n // B * B), other=0)")], "quant_partial_block_dropped")
quant = edited(ref, ("from fmspec.reference import quant_triton\n    return quant_triton",
                     "return KERNELS"), KERNELS=KERNELS)
