"""quant: int8_matmul checks threshold < 0 instead of threshold <= 0, so threshold=0 (every column an outlier) is accepted."""

import torch

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import patch

COMPONENT = "quant"
CAUGHT_BY = ["test_int8_matmul_bad_arguments_raise"]


def int8_matmul(x, w, threshold=6.0):
    ref._check_float(x)
    ref._check_float(w, "w")
    if w.dim() != 2 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"w must have shape (out, {x.shape[-1]}), got {tuple(w.shape)}")
    if not isinstance(threshold, (int, float)) or threshold < 0:  # bug: 0 passes
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    x2 = x.reshape(-1, x.shape[-1]).to(w.dtype)
    outlier = (x2.abs() >= threshold).any(dim=0)
    y = x2[:, outlier] @ w[:, outlier].T
    x_r, w_r = x2[:, ~outlier], w[:, ~outlier]
    if x_r.shape[1]:
        qx, sx = ref.absmax_quantize(x_r, dim=-1)
        qw, sw = ref.absmax_quantize(w_r, dim=-1)
        y = y + (qx.to(torch.int32) @ qw.to(torch.int32).T).to(w.dtype) * sx * sw.T
    return y.reshape(*x.shape[:-1], w.shape[0]).to(x.dtype)


quant = patch(ref, int8_matmul=int8_matmul)
