"""layers: attention backward forgets the 1/sqrt(d_head) factor in dQ and dK (the forward pass has it)."""

import math

import torch

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch

COMPONENT = "layers"
CAUGHT_BY = ["test_attention_backward_matches_autograd", "test_bad_arguments_raise"]


def attention_backward(x, w_q, w_k, w_v, w_o, n_heads, grad_y, causal=True):
    b, n, d = x.shape
    scale = 1.0 / math.sqrt(d // n_heads)
    q, k, v = (ref._split(x @ w.T, n_heads) for w in (w_q, w_k, w_v))
    s = (q @ k.transpose(-2, -1)) * scale
    if causal:
        s = s.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    p = torch.softmax(s, dim=-1)
    o = ref._merge(p @ v)
    grad_w_o = ref._rows(grad_y).T @ ref._rows(o)
    grad_o = ref._split(grad_y @ w_o, n_heads)
    grad_v = p.transpose(-2, -1) @ grad_o
    grad_s = ref.softmax_backward(p, grad_o @ v.transpose(-2, -1))
    grad_q = grad_s @ k  # the scale is missing here
    grad_k = grad_s.transpose(-2, -1) @ q  # and here
    gq, gk, gv = ref._merge(grad_q), ref._merge(grad_k), ref._merge(grad_v)
    grad_x = gq @ w_q + gk @ w_k + gv @ w_v
    return (grad_x, *(ref._rows(g).T @ ref._rows(x) for g in (gq, gk, gv)), grad_w_o)


layers = patch(ref, attention_backward=attention_backward)
