"""quant: the last partial block is dropped (its values quantize to 0, it gets no scale)."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = [
    "test_last_partial_block_has_its_own_scale",
    "test_codes_match_absmax_formula",
    "test_scale_is_absmax_over_127",
    "test_error_at_most_half_step",
    "test_bad_arguments_raise_value_error",
    "test_blockwise_worked_example_outlier",
    "test_dequantize_is_codes_times_scale",
    "test_largest_entry_maps_to_127",
    "test_scale_equivariance",
    "test_zero_groups_give_zeros",
]


def absmax_quantize(x, block_size=None, dim=None):
    if block_size is None:
        return ref.absmax_quantize(x, dim=dim)
    flat = x.reshape(-1)
    n_full = flat.numel() // block_size
    blocks = flat[: n_full * block_size].reshape(n_full, block_size)
    absmax = blocks.abs().amax(dim=1)
    q = torch.zeros(flat.numel(), dtype=torch.int8)
    q[: n_full * block_size] = ref._round_codes(blocks, absmax[:, None]).reshape(-1)
    return q.reshape(x.shape), absmax / 127


def absmax_dequantize(q, scale, block_size=None, dim=None):
    if block_size is None:
        return ref.absmax_dequantize(q, scale, dim=dim)
    flat = q.reshape(-1).to(scale.dtype)
    out = torch.zeros_like(flat)
    n = scale.numel() * block_size
    out[:n] = (flat[:n].reshape(-1, block_size) * scale[:, None]).reshape(-1)
    return out.reshape(q.shape)


quant = patch(ref, absmax_quantize=absmax_quantize, absmax_dequantize=absmax_dequantize)
