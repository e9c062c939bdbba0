"""quant: a "fast path" quantizes inputs of 65536 elements or more from a bfloat16 copy: large inputs get other codes than their pieces."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = ["test_large_input_equals_its_pieces"]


def absmax_quantize(x, block_size=None, dim=None):
    if isinstance(x, torch.Tensor) and x.numel() >= 1 << 16:
        q, scale = ref.absmax_quantize(x.to(torch.bfloat16), block_size=block_size, dim=dim)
        return q, scale.to(x.dtype)
    return ref.absmax_quantize(x, block_size=block_size, dim=dim)


quant = patch(ref, absmax_quantize=absmax_quantize)
