"""layers: layer-norm backward recomputes σ with the unbiased variance (torch.var's default), not the biased one."""

import torch

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch

COMPONENT = "layers"
CAUGHT_BY = ["test_layernorm_backward_matches_autograd", "test_bad_arguments_raise"]


def layernorm_backward(x, weight, bias, grad_y, eps=1e-5):
    d = x.shape[-1]
    mu = x.mean(-1, keepdim=True)
    rstd = 1.0 / torch.sqrt(x.var(-1, keepdim=True) + eps)  # divides by d - 1
    xhat = (x - mu) * rstd
    g_hat = grad_y * weight
    grad_x = rstd * (g_hat - g_hat.mean(-1, keepdim=True) - xhat * (g_hat * xhat).mean(-1, keepdim=True))
    return grad_x, (grad_y * xhat).reshape(-1, d).sum(0), grad_y.reshape(-1, d).sum(0)


layers = patch(ref, layernorm_backward=layernorm_backward)
