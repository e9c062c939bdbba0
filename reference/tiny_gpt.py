"""The lecture's transformer, written as its program, for measuring memory (lecture 003, "Transformer
Memory: Forward & Computational Graph"; used by reference/accounting.py and the checkpoint and accounting
suites).

The program on the slides, with d the hidden size, T the context, V the vocabulary, L layers and
N_heads heads (B sequences at once)::

    Embed data:            X <- X W_embed                  X: one-hot (B, T, V) -> (B, T, d)
    for l = 0 .. L-1:      "block input" X                 (checkpoint here)
        Attention:         Q = X W_Q, K = X W_K, V = X W_V
                           X <- MaskedRowSoftmax(Q K^T / sqrt(d_head)) V       one T x T matrix a head
        MLP (d -> 4d -> d):  X <- sigma(X W_1);  X <- sigma(X W_2);  X <- X W_proj
    Compute X <- X W_unembed, return LogLoss

Parameters: W_Q, W_K, W_V (3d^2), W_1 and W_2 (4d^2 each), W_proj (d^2) per layer, W_embed and W_unembed
(dV each): exactly 12 d^2 L + 2 d V, as the lecture counts (no biases, no layer norms, no residual
connections: the slides leave them out, and so does this model).

sigma is the logistic sigmoid, whose backward needs only its output. What autograd then saves for the
backward pass (floating-point elements, B = 1; what ``suites/memory.saved_tensors`` measures)::

    per layer: X (dT), Q, K, V (3dT), the attention matrices (N_heads T^2), the attention output (dT),
               sigma(X W_1) (4dT), sigma(X W_2) (dT)                       = 10 dT + N_heads T^2
    once:      the one-hot input (VT), the last block's output (dT), the log-probabilities (VT)

so the graph holds L (10 dT + N_heads T^2) + dT + 2VT. The lecture's 12 L dT + L N_heads T^2 + 2VT has
the attention and vocabulary terms exactly and rounds the per-layer activations up to 12 dT.

Worked example: d=8, L=2, V=11, N_heads=2 has 12*64*2 + 2*8*11 = 1712 parameters; at T=5 its graph
holds 2*(400 + 50) + 40 + 110 = 1050 elements (the lecture's formula: 960 + 100 + 110 = 1170).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Config:
    d: int = 16  # hidden size
    n_layers: int = 2  # L
    vocab: int = 32  # V
    n_heads: int = 2  # N_heads; d_head = d / n_heads
    dropout: float = 0.0  # on the attention output and the MLP output (0: none, the lecture's model)
    dtype: torch.dtype = torch.float64


def _weight(rows: int, cols: int, dtype: torch.dtype) -> nn.Parameter:
    return nn.Parameter(torch.randn(rows, cols, dtype=dtype) / math.sqrt(rows))


class Block(nn.Module):
    """One layer of the lecture's program: masked multi-head attention, then the d -> 4d -> d MLP and W_proj."""

    def __init__(self, cfg: Config):
        super().__init__()
        if cfg.d % cfg.n_heads:
            raise ValueError(f"n_heads={cfg.n_heads} must divide d={cfg.d}")
        d, dt = cfg.d, cfg.dtype
        self.n_heads = cfg.n_heads
        self.W_Q, self.W_K, self.W_V = _weight(d, d, dt), _weight(d, d, dt), _weight(d, d, dt)
        self.W_1, self.W_2, self.W_proj = _weight(d, 4 * d, dt), _weight(4 * d, d, dt), _weight(d, d, dt)
        self.drop = nn.Dropout(cfg.dropout)

    def attention_matrices(self, x: torch.Tensor) -> torch.Tensor:
        """MaskedRowSoftmax(Q K^T / sqrt(d_head)): (B, H, T, T), row t sees keys 0..t."""
        q, k = self._heads(x @ self.W_Q), self._heads(x @ self.W_K)  # (B, H, T, dh)
        return self._softmax(q, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, d)
        B, T, d = x.shape
        q, k, v = self._heads(x @ self.W_Q), self._heads(x @ self.W_K), self._heads(x @ self.W_V)  # (B, H, T, dh)
        a = self._softmax(q, k)  # (B, H, T, T)
        x = (a @ v).transpose(1, 2).reshape(B, T, d)  # (B, H, T, dh) -> (B, T, H, dh) -> (B, T, d)
        x = self.drop(x)
        x = torch.sigmoid(x @ self.W_1)  # (B, T, 4d)
        x = torch.sigmoid(x @ self.W_2)  # (B, T, d)
        return self.drop(x @ self.W_proj)  # (B, T, d)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        return x.reshape(B, T, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, T, d) -> (B, H, T, dh)

    @staticmethod
    def _softmax(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        T, dh = q.shape[-2], q.shape[-1]
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(dh)  # (B, H, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()  # True = may attend
        return torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)


class TinyGPT(nn.Module):
    """Embedding, ``n_layers`` blocks, unembedding: ``model(onehot)`` gives logits (B, T, V)."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.W_embed = _weight(cfg.vocab, cfg.d, cfg.dtype)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.W_unembed = _weight(cfg.d, cfg.vocab, cfg.dtype)

    def embed(self, onehot: torch.Tensor) -> torch.Tensor:
        return onehot @ self.W_embed  # (B, T, V) -> (B, T, d)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W_unembed  # (B, T, d) -> (B, T, V)

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        x = self.embed(onehot)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def one_hot(ids: torch.Tensor, vocab: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Token ids (B, T) -> the lecture's data matrix X in {0, 1}^(B, T, V)."""
    return nn.functional.one_hot(ids, vocab).to(dtype)


def log_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of ``targets`` (B, T) under ``logits`` (B, T, V)."""
    logp = torch.log_softmax(logits, dim=-1)  # (B, T, V), saved for backward
    return -logp.gather(-1, targets[..., None]).mean()
