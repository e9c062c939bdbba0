"""attention: mask added as -1e9 to the scores (scores + (~mask) * -1e9), masked keys and values used as given."""

import math

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import dense

COMPONENT = "attention"
CAUGHT_BY = ["test_masked_keys_and_values_change_nothing", "test_fully_masked_row_gives_zeros_and_finite_gradients"]


def scaled_dot_product(q, k, v, mask=None, causal=False, scale=None, return_weights=False):
    dense.check_qkv(q, k, v)
    allowed = dense.allowed_keys(mask, causal, q.shape[:-2], q.shape[-2], k.shape[-2], q.device)
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ k.transpose(-2, -1) * scale
    if allowed is not None:
        scores = scores + (~allowed).to(scores.dtype) * -1e9
    weights = torch.softmax(scores, dim=-1)
    out = weights @ v
    return (out, weights) if return_weights else out


attention = patch(ref, scaled_dot_product=scaled_dot_product)
