"""quant: zeropoint_dequantize subtracts the zero point in int8, so q - zero_point wraps around past 127."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = ["test_zeropoint_worked_example"]


def zeropoint_dequantize(q, scale, zero_point, block_size=None):
    ref.zeropoint_dequantize(q, scale, zero_point, block_size)  # argument checks
    if block_size is None:
        return (q - zero_point.to(torch.int8)).to(scale.dtype) * scale  # bug: int8 arithmetic overflows
    blocks = ref._to_blocks(q, block_size)  # (n_blocks, block_size), int8
    out = (blocks - zero_point[:, None].to(torch.int8)).to(scale.dtype) * scale[:, None]
    return ref._from_blocks(out, q.shape)


quant = patch(ref, zeropoint_dequantize=zeropoint_dequantize)
