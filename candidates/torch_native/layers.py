"""layers from torch autograd: each backward differentiates torch's own forward layer
(softmax, F.layer_norm, F.embedding, F.cross_entropy, F.scaled_dot_product_attention, matmuls).

softmax_backward receives y = softmax(x), not x: since softmax(log y) = y for y > 0, the forward is taken
at x = log y. Argument checking is torch's own where it raises ValueError, plus the contract's checks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _vjp(forward, inputs: list[Tensor], grad_out: Tensor, wrt: list[int]) -> list[Tensor]:
    leaves = [t.detach().clone().requires_grad_(i in wrt) for i, t in enumerate(inputs)]
    with torch.enable_grad():
        out = forward(*leaves)
        return list(torch.autograd.grad(out, [leaves[i] for i in wrt], grad_outputs=grad_out))


def _shape(name: str, t: Tensor, shape) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)}")


def softmax_backward(y: Tensor, grad_y: Tensor, dim: int = -1) -> Tensor:
    _shape("grad_y", grad_y, y.shape)
    return _vjp(lambda x: torch.softmax(x, dim), [torch.log(y)], grad_y, [0])[0]


def layernorm_backward(x, weight, bias, grad_y, eps: float = 1e-5):
    d = x.shape[-1]
    _shape("weight", weight, (d,))
    _shape("bias", bias, (d,))
    _shape("grad_y", grad_y, x.shape)
    return tuple(_vjp(lambda x, w, b: F.layer_norm(x, (d,), w, b, eps), [x, weight, bias], grad_y, [0, 1, 2]))


def embedding_backward(ids: Tensor, num_embeddings: int, grad_y: Tensor) -> Tensor:
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_embeddings):
        raise ValueError(f"ids must lie in [0, {num_embeddings})")
    _shape("grad_y", grad_y, (*ids.shape, grad_y.shape[-1]))
    weight = torch.zeros(num_embeddings, grad_y.shape[-1], dtype=grad_y.dtype, device=grad_y.device)
    return _vjp(lambda w: F.embedding(ids, w), [weight], grad_y, [0])[0]


def cross_entropy_backward(logits: Tensor, targets: Tensor) -> Tensor:
    c = logits.shape[-1]
    _shape("targets", targets, logits.shape[:-1])
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= c):
        raise ValueError(f"targets must lie in [0, {c})")
    forward = lambda z: F.cross_entropy(z.reshape(-1, c), targets.reshape(-1).long())  # noqa: E731
    return _vjp(forward, [logits], torch.ones((), dtype=logits.dtype), [0])[0]


def attention_backward(x, w_q, w_k, w_v, w_o, n_heads: int, grad_y, causal: bool = True):
    b, t, d = x.shape
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v), ("w_o", w_o)):
        _shape(name, w, (d, d))
    if n_heads < 1 or d % n_heads:
        raise ValueError(f"n_heads must divide d = {d}, got {n_heads}")
    _shape("grad_y", grad_y, x.shape)

    def forward(x, w_q, w_k, w_v, w_o):
        q, k, v = ((x @ w.T).reshape(b, t, n_heads, d // n_heads).transpose(1, 2) for w in (w_q, w_k, w_v))
        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)  # (B, H, T, Dh)
        return o.transpose(1, 2).reshape(b, t, d) @ w_o.T

    return tuple(_vjp(forward, [x, w_q, w_k, w_v, w_o], grad_y, [0, 1, 2, 3, 4]))


def lora_backward(x, W, A, B, alpha: float, grad_y):
    out_f, in_f = W.shape
    r = A.shape[0]
    _shape("A", A, (r, in_f))
    _shape("B", B, (out_f, r))
    _shape("grad_y", grad_y, (*x.shape[:-1], out_f))
    forward = lambda x, A, B: x @ W.T + (alpha / r) * (x @ A.T) @ B.T  # noqa: E731
    return tuple(_vjp(forward, [x, A, B], grad_y, [0, 1, 2]))
