"""quant: int8_matmul quantizes x and w with one absmax each (per tensor) instead of per row."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = ["test_int8_matmul_matches_llm_int8_formula"]


def int8_matmul(x, w, threshold=6.0):
    if not threshold > 0 or w.shape[-1] != x.shape[-1]:
        raise ValueError("bad threshold or w")
    x2 = x.reshape(-1, x.shape[-1])
    outlier = (x2.abs() >= threshold).any(dim=0)
    y = x2[:, outlier] @ w[:, outlier].T
    if (~outlier).any():
        qx, sx = ref.absmax_quantize(x2[:, ~outlier])
        qw, sw = ref.absmax_quantize(w[:, ~outlier])
        y = y + (qx.to(torch.int32) @ qw.to(torch.int32).T).to(w.dtype) * sx * sw
    return y.reshape(*x.shape[:-1], w.shape[0])


quant = patch(ref, int8_matmul=int8_matmul)
