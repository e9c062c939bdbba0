"""layers: layer-norm backward drops the mean(ĝ) term, as if the mean did not depend on x."""

import torch

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch

COMPONENT = "layers"
CAUGHT_BY = ["test_layernorm_backward_matches_autograd", "test_layernorm_grad_x_sums_to_zero"]


def layernorm_backward(x, weight, bias, grad_y, eps=1e-5):
    _, grad_w, grad_b = ref.layernorm_backward(x, weight, bias, grad_y, eps)
    mu = x.mean(-1, keepdim=True)
    rstd = 1.0 / torch.sqrt((x - mu).pow(2).mean(-1, keepdim=True) + eps)
    xhat = (x - mu) * rstd
    g_hat = grad_y * weight
    return rstd * (g_hat - xhat * (g_hat * xhat).mean(-1, keepdim=True)), grad_w, grad_b


layers = patch(ref, layernorm_backward=layernorm_backward)
