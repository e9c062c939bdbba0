"""Manual backward passes of transformer layers, written from their analytical gradients, not autograd.

After seed 002 ("Deep learning for pedestrians: backpropagation in Transformers", index-free gradients
of embedding, multi-head self-attention, layer norm and LoRA) and lecture 003 ("AD with Transformers").
Each ``*_backward`` takes the layer's inputs and the gradient of the loss with respect to its output,
G = dL/dY, and returns the gradient with respect to every input. Linear maps follow ``torch.nn.Linear``
(Y = X Wᵀ), so for Y = X Wᵀ: dL/dX = G W and dL/dW = Gᵀ X (rows summed over every leading dimension).

    softmax       y = softmax(x)                 dx = y ⊙ (g - ⟨g, y⟩)            (⟨·,·⟩ along dim)
    layer norm    x̂ = (x - μ)/σ, σ = sqrt(var + eps) (biased var), y = w ⊙ x̂ + b, along the last dim:
                  dx = (1/σ) (ĝ - mean(ĝ) - x̂ ⊙ mean(ĝ ⊙ x̂)),  ĝ = w ⊙ g;  dw = Σ g ⊙ x̂;  db = Σ g
    embedding     y = W[ids]                     dW[v] = Σ_{positions p with ids[p] = v} g[p]
    cross-entropy L = mean_n -log softmax(z_n)[t_n]    dz_n = (softmax(z_n) - onehot(t_n)) / N
    attention     Q, K, V = X W_qᵀ, X W_kᵀ, X W_vᵀ split into H heads (B, H, T, Dh), Dh = d/H,
                  S = Q Kᵀ/sqrt(Dh) (causal: j > i masked), P = softmax(S), O = P V, Y = merge(O) W_oᵀ
                  dW_o = Gᵀ merge(O), dO = split(G W_o), dV = Pᵀ dO, dP = dO Vᵀ,
                  dS = P ⊙ (dP - rowsum(dP ⊙ P)), dQ = dS K/sqrt(Dh), dK = dSᵀ Q/sqrt(Dh),
                  dW_q = merge(dQ)ᵀ X (same for k, v), dX = merge(dQ) W_q + merge(dK) W_k + merge(dV) W_v
    LoRA          y = x Wᵀ + s · x Aᵀ Bᵀ, s = alpha/r, A (r, in), B (out, r), W frozen:
                  dx = g W + s · g B A,  dA = s · (g B)ᵀ x,  dB = s · gᵀ (x Aᵀ)

Worked examples:
    softmax_backward(y=[1/2, 1/2], grad_y=[1, 0]) = [1/2 · (1 - 1/2), 1/2 · (0 - 1/2)] = [1/4, -1/4]
    cross_entropy_backward(zeros(2, 4), targets=[0, 3]) = ([1/4, 1/4, 1/4, 1/4] - onehot) / 2
        = [[-3/8, 1/8, 1/8, 1/8], [1/8, 1/8, 1/8, -3/8]]
    embedding_backward(ids=[0, 2, 0], 3, g) = [g0 + g2, 0, g1]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _tensor(name: str, t, ndim: int | None = None, floating: bool = True) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if floating and not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {tuple(t.shape)}")


def _same_shape(name: str, t: Tensor, shape, what: str) -> None:
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)} ({what})")


def _ids(name: str, ids, high: int) -> None:
    if not isinstance(ids, Tensor) or ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name} must be an integer tensor")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= high):
        raise ValueError(f"{name} must lie in [0, {high}), got values in [{int(ids.min())}, {int(ids.max())}]")


# ------------------------------------------------------------------------------------------- softmax
def softmax_backward(y: Tensor, grad_y: Tensor, dim: int = -1) -> Tensor:
    """dL/dx for y = softmax(x, dim): y ⊙ (g - ⟨g, y⟩), the inner product along ``dim``."""
    _tensor("y", y)
    _tensor("grad_y", grad_y)
    _same_shape("grad_y", grad_y, y.shape, "the shape of y")
    return y * (grad_y - (grad_y * y).sum(dim, keepdim=True))


# ---------------------------------------------------------------------------------------- layer norm
def layernorm_backward(x: Tensor, weight: Tensor, bias: Tensor, grad_y: Tensor, eps: float = 1e-5
                       ) -> tuple[Tensor, Tensor, Tensor]:
    """(dL/dx, dL/dweight, dL/dbias) for y = layer_norm(x, (d,), weight, bias, eps) over the last dim."""
    _tensor("x", x)
    d = x.shape[-1]
    for name, t in (("weight", weight), ("bias", bias)):
        _tensor(name, t, ndim=1)
        _same_shape(name, t, (d,), "the last dimension of x")
    _tensor("grad_y", grad_y)
    _same_shape("grad_y", grad_y, x.shape, "the shape of x")
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps!r}")
    mu = x.mean(-1, keepdim=True)  # (..., 1)
    var = (x - mu).pow(2).mean(-1, keepdim=True)  # biased, as layer norm uses
    rstd = 1.0 / torch.sqrt(var + eps)  # 1/σ
    xhat = (x - mu) * rstd  # (..., d)
    g_hat = grad_y * weight  # dL/dx̂
    grad_x = rstd * (g_hat - g_hat.mean(-1, keepdim=True) - xhat * (g_hat * xhat).mean(-1, keepdim=True))
    grad_w = (grad_y * xhat).reshape(-1, d).sum(0)  # (d,)
    grad_b = grad_y.reshape(-1, d).sum(0)  # (d,)
    return grad_x, grad_w, grad_b


# ----------------------------------------------------------------------------------------- embedding
def embedding_backward(ids: Tensor, num_embeddings: int, grad_y: Tensor) -> Tensor:
    """dL/dW (num_embeddings, d) for y = W[ids]: each position's gradient added to its token's row."""
    if not isinstance(num_embeddings, int) or isinstance(num_embeddings, bool) or num_embeddings < 1:
        raise ValueError(f"num_embeddings must be an int >= 1, got {num_embeddings!r}")
    _ids("ids", ids, num_embeddings)
    _tensor("grad_y", grad_y)
    if tuple(grad_y.shape[:-1]) != tuple(ids.shape) or grad_y.dim() != ids.dim() + 1:
        raise ValueError(f"grad_y has shape {tuple(grad_y.shape)}, expected {tuple(ids.shape)} + (d,)")
    d = grad_y.shape[-1]
    grad_w = torch.zeros(num_embeddings, d, dtype=grad_y.dtype, device=grad_y.device)
    # a token that occurs twice collects both gradients: add, never assign
    return grad_w.index_add_(0, ids.reshape(-1).long(), grad_y.reshape(-1, d))  # (V, d)


# ------------------------------------------------------------------------------------- cross-entropy
def cross_entropy_backward(logits: Tensor, targets: Tensor) -> Tensor:
    """dL/dlogits for L = mean over rows of -log softmax(logits)[target]: (softmax - onehot) / N.

    logits (..., C), targets (...) with values in [0, C); N = targets.numel() rows.
    """
    _tensor("logits", logits)
    if logits.dim() < 1:
        raise ValueError("logits must have a class dimension")
    c = logits.shape[-1]
    _ids("targets", targets, c)
    if tuple(targets.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"targets has shape {tuple(targets.shape)}, expected {tuple(logits.shape[:-1])}")
    n = targets.numel()
    if n == 0:
        raise ValueError("targets must hold at least one row")
    p = torch.softmax(logits, dim=-1)  # (..., C)
    onehot = torch.nn.functional.one_hot(targets.long(), c).to(p.dtype)
    return (p - onehot) / n


# ----------------------------------------------------------------------------------------- attention
def _split(t: Tensor, h: int) -> Tensor:
    b, n, d = t.shape
    return t.reshape(b, n, h, d // h).transpose(1, 2)  # (B, T, d) -> (B, H, T, Dh)


def _merge(t: Tensor) -> Tensor:
    b, h, n, dh = t.shape
    return t.transpose(1, 2).reshape(b, n, h * dh)  # (B, H, T, Dh) -> (B, T, d)


def _rows(t: Tensor) -> Tensor:
    return t.reshape(-1, t.shape[-1])  # (B, T, d) -> (B·T, d)


def attention_backward(x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, w_o: Tensor, n_heads: int,
                       grad_y: Tensor, causal: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """(dL/dx, dL/dw_q, dL/dw_k, dL/dw_v, dL/dw_o) for y = multi-head self-attention of x (B, T, d).

    The forward pass is recomputed (P is needed); see the module docstring for every step.
    """
    _tensor("x", x, ndim=3)
    b, n, d = x.shape
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v), ("w_o", w_o)):
        _tensor(name, w, ndim=2)
        _same_shape(name, w, (d, d), "(d, d) for x of width d")
    if not isinstance(n_heads, int) or isinstance(n_heads, bool) or n_heads < 1 or d % n_heads:
        raise ValueError(f"n_heads must be an int >= 1 dividing d = {d}, got {n_heads!r}")
    _tensor("grad_y", grad_y)
    _same_shape("grad_y", grad_y, x.shape, "the shape of x")
    scale = 1.0 / math.sqrt(d // n_heads)
    # forward
    q, k, v = (_split(x @ w.T, n_heads) for w in (w_q, w_k, w_v))  # (B, H, T, Dh) each
    s = (q @ k.transpose(-2, -1)) * scale  # (B, H, T, T)
    if causal:
        visible = torch.ones(n, n, dtype=torch.bool, device=x.device).tril()  # key j <= query i
        s = s.masked_fill(~visible, float("-inf"))
    p = torch.softmax(s, dim=-1)  # (B, H, T, T); masked entries are exactly 0
    o = _merge(p @ v)  # (B, T, d)
    # backward
    grad_w_o = _rows(grad_y).T @ _rows(o)  # (d, d)
    grad_o = _split(grad_y @ w_o, n_heads)  # (B, H, T, Dh)
    grad_v = p.transpose(-2, -1) @ grad_o  # (B, H, T, Dh)
    grad_p = grad_o @ v.transpose(-2, -1)  # (B, H, T, T)
    grad_s = softmax_backward(p, grad_p)  # zero wherever P is: masked scores get no gradient
    grad_q = (grad_s @ k) * scale  # (B, H, T, Dh)
    grad_k = (grad_s.transpose(-2, -1) @ q) * scale  # (B, H, T, Dh)
    grad_qm, grad_km, grad_vm = _merge(grad_q), _merge(grad_k), _merge(grad_v)  # (B, T, d) each
    grad_x = grad_qm @ w_q + grad_km @ w_k + grad_vm @ w_v  # (B, T, d)
    grad_w_q, grad_w_k, grad_w_v = (_rows(g).T @ _rows(x) for g in (grad_qm, grad_km, grad_vm))  # (d, d) each
    return grad_x, grad_w_q, grad_w_k, grad_w_v, grad_w_o


# ---------------------------------------------------------------------------------------------- LoRA
def lora_backward(x: Tensor, W: Tensor, A: Tensor, B: Tensor, alpha: float, grad_y: Tensor
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """(dL/dx, dL/dA, dL/dB) for y = x Wᵀ + (alpha/r) x Aᵀ Bᵀ with W frozen (no gradient returned for it)."""
    _tensor("x", x)
    _tensor("W", W, ndim=2)
    _tensor("A", A, ndim=2)
    _tensor("B", B, ndim=2)
    out_f, in_f = W.shape
    r = A.shape[0]
    if x.dim() < 1 or x.shape[-1] != in_f:
        raise ValueError(f"x has shape {tuple(x.shape)}, its last dimension must be W's in_features {in_f}")
    _same_shape("A", A, (r, in_f), "(r, in_features)")
    _same_shape("B", B, (out_f, r), "(out_features, r)")
    if r < 1:
        raise ValueError("A must have r >= 1 rows")
    _tensor("grad_y", grad_y)
    _same_shape("grad_y", grad_y, (*x.shape[:-1], out_f), "x's leading dimensions + (out_features,)")
    s = alpha / r
    g_b = grad_y @ B  # (..., r): the gradient at the rank-r bottleneck
    grad_x = grad_y @ W + s * (g_b @ A)  # (..., in)
    grad_A = s * (_rows(g_b).T @ _rows(x))  # (r, in)
    grad_B = s * (_rows(grad_y).T @ _rows(x @ A.T))  # (out, r)
    return grad_x, grad_A, grad_B
