"""attention: scaled dot-product, multi-head, sparse patterns, linear/kernel, Performer, Linformer.
Spec: docs/spec/attention.md.

Conventions: layout (B, H, T, D); masks are bool, True = may attend, broadcastable to (B, H, Tq, Tk);
causal = query i sees keys j <= i (top-left aligned, as torch SDPA); a query that may see no key outputs
zeros with finite (zero) gradients; scale defaults to 1/sqrt(D); inputs are never modified in place; bad
arguments raise ValueError or TypeError naming the argument.
"""

import torch


def scaled_dot_product(q, k, v, mask=None, causal=False, scale=None, return_weights=False):
    """softmax(q k^T · scale, masked) v for q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv).

    Returns (B, H, Tq, Dv), and the weights (B, H, Tq, Tk) too if ``return_weights``. Keys and values that
    no query may see must not influence anything, even when they hold NaN or inf.
    """
    raise NotImplementedError("attention.scaled_dot_product")


def multi_head(x, w_q, w_k, w_v, w_o, n_heads, causal=False, n_kv_heads=None):
    """Multi-head self-attention of x (B, T, d): y = concat_h(attention(x W_q^h, x W_k^h, x W_v^h)) W_o^T.

    W as in nn.Linear (y = x @ W.T); w_q, w_o (d, d); w_k, w_v (n_kv_heads · d/n_heads, d). Head h uses rows
    h·Dh..(h+1)·Dh of w_q and kv head h // (n_heads / n_kv_heads); scale 1/sqrt(d / n_heads).
    """
    raise NotImplementedError("attention.multi_head")


def sliding_window_mask(T, window, causal=False) -> torch.Tensor:
    """(T, T) bool: row i sees j with |i - j| < window (causal: 0 <= i - j < window). window >= 1."""
    raise NotImplementedError("attention.sliding_window_mask")


def longformer_mask(T, window, global_idx) -> torch.Tensor:
    """(T, T) bool: the sliding window, plus full rows and full columns at the global positions."""
    raise NotImplementedError("attention.longformer_mask")


def bigbird_mask(T, block, n_random, n_window, n_global, seed) -> torch.Tensor:
    """(T, T) bool, constant on blocks of ``block`` tokens: the first n_global blocks are full rows and columns;
    block i sees blocks j with |i - j| <= n_window // 2 (n_window odd, or 0); every other row block sees
    n_random more blocks drawn (seeded) from all blocks outside its window and the global ones."""
    raise NotImplementedError("attention.bigbird_mask")


def strided_mask(T, stride) -> torch.Tensor:
    """(T, T) bool, Sparse Transformer strided: j <= i and (i - j < stride or (i - j) % stride == 0)."""
    raise NotImplementedError("attention.strided_mask")


def fixed_mask(T, stride, c) -> torch.Tensor:
    """(T, T) bool, Sparse Transformer fixed: j <= i and (j // stride == i // stride or j % stride >= stride - c)."""
    raise NotImplementedError("attention.fixed_mask")


def sparse(q, k, v, pattern, **pattern_args):
    """scaled_dot_product(q, k, v, mask=<pattern>_mask(T, **pattern_args)) in O(T · W) memory, never a (T, T)
    tensor. pattern: "sliding_window", "longformer", "bigbird", "strided" or "fixed"."""
    raise NotImplementedError("attention.sparse")


def block_mask(pattern, T, device="cpu", **pattern_args):
    """<pattern>_mask(T, **pattern_args) as a torch.nn.attention.flex_attention.BlockMask over (T, T) (B and H
    broadcast): its mask_mod equals the mask entry by entry; every tile holding a visible entry is listed, a
    tile listed full is visible everywhere. Optional: FlexAttention's form of the pattern."""
    raise NotImplementedError("attention.block_mask")


def linear(q, k, v, feature_map="elu1", causal=False):
    """φ(q_i)^T Σ_j φ(k_j) v_j^T / φ(q_i)^T Σ_j φ(k_j), φ = elu + 1 (or a callable); causal: prefix sums j <= i."""
    raise NotImplementedError("attention.linear")


def performer(q, k, v, n_features, seed, causal=False):
    """Softmax attention (scale 1/sqrt(D)) estimated with n_features positive random features (FAVOR+)."""
    raise NotImplementedError("attention.performer")


def linformer(q, k, v, e, f):
    """softmax(q (e k)^T / sqrt(D)) (f v) with e, f of shape (k, T)."""
    raise NotImplementedError("attention.linformer")
