"""attention: softmax denominator detached (e / e.sum().detach()): right forward values, wrong gradients."""

import types

import torch

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.attention import dense
from fmspec.reference.attention import efficient


def _masked_softmax(scores, allowed):
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    top = scores.amax(dim=-1, keepdim=True).detach()
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    e = torch.exp(scores - top)
    total = e.sum(dim=-1, keepdim=True).detach()
    return e / torch.where(total > 0, total, torch.ones_like(total))


def _rebind(fn, **names):
    return types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__, fn.__defaults__)


COMPONENT = "attention"
CAUGHT_BY = ["test_gradients_match_torch_sdpa_float64", "test_sparse_gradients_match_dense"]

scaled_dot_product = _rebind(dense.scaled_dot_product, masked_softmax=_masked_softmax)
_gathered = _rebind(efficient.gathered_attention, masked_softmax=_masked_softmax)
sparse = _rebind(efficient.sparse, gathered_attention=_gathered, scaled_dot_product=scaled_dot_product)
attention = patch(ref, scaled_dot_product=scaled_dot_product, sparse=sparse)
