"""layers: hand-written backward passes of transformer layers. Spec: docs/spec/layers.md.

Each ``*_backward`` takes the layer's inputs and G = dL/d(output) and returns the gradient with respect
to every input, computed from the analytical expressions (not with autograd), in the inputs' dtype.
Linear maps follow torch.nn.Linear (y = x @ W.T). Bad arguments raise ValueError or TypeError naming
the argument.
"""


def softmax_backward(y, grad_y, dim=-1):
    """dL/dx for y = softmax(x, dim), given y (not x) and grad_y of y's shape."""
    raise NotImplementedError("layers.softmax_backward")


def layernorm_backward(x, weight, bias, grad_y, eps=1e-5):
    """(grad_x, grad_weight, grad_bias) for y = layer_norm(x, (d,), weight, bias, eps) over the last dim.

    Biased variance, as torch.nn.functional.layer_norm; grad_weight and grad_bias have shape (d,).
    """
    raise NotImplementedError("layers.layernorm_backward")


def embedding_backward(ids, num_embeddings, grad_y):
    """dL/dW, shape (num_embeddings, d), for y = W[ids]; ids (...) integer, grad_y (..., d)."""
    raise NotImplementedError("layers.embedding_backward")


def cross_entropy_backward(logits, targets):
    """dL/dlogits for L = mean over rows of -log softmax(logits)[target]; logits (..., C), targets (...)."""
    raise NotImplementedError("layers.cross_entropy_backward")


def attention_backward(x, w_q, w_k, w_v, w_o, n_heads, grad_y, causal=True):
    """(grad_x, grad_w_q, grad_w_k, grad_w_v, grad_w_o) for multi-head self-attention of x (B, T, d).

    Q = x w_qᵀ etc. split into heads (head h: rows h·Dh..(h+1)·Dh of w_q), scale 1/sqrt(Dh), causal:
    query i sees keys j <= i; y = concat(heads) w_oᵀ.
    """
    raise NotImplementedError("layers.attention_backward")


def lora_backward(x, W, A, B, alpha, grad_y):
    """(grad_x, grad_A, grad_B) for y = x Wᵀ + (alpha / r) x Aᵀ Bᵀ; A (r, in), B (out, r), W frozen."""
    raise NotImplementedError("layers.lora_backward")
