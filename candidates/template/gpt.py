"""gpt: a small decoder-only GPT composed from the contract's components, trained end to end.
Spec: docs/spec/gpt.md.

The suite plugs what you write here (and your attention, flash, posenc, layers, checkpoint, lora and bpe)
into the reference model; every piece you leave out comes from the reference. A piece that still raises
NotImplementedError makes the tests that use it *missing*: delete it to compose with the reference's.
"""

from typing import Callable, Iterable, Sequence

import torch
from torch import nn


def embed(ids: torch.Tensor, token_table: torch.Tensor, position_table: torch.Tensor) -> torch.Tensor:
    """x[b, t] = token_table[ids[b, t]] + position_table[t]: ids (B, T) int64, tables (V, d) and (T_max, d)
    -> (B, T, d). A context T longer than the positional table, or an id outside [0, V), raises ValueError."""
    raise NotImplementedError("gpt.embed")


class Block(nn.Module):
    """One pre-norm transformer block::

        x = x + dropout(o(attention(q(h), k(h), v(h), causal=causal)))     h = layer_norm(x, ln1.weight, ln1.bias)
        x = x + dropout(proj(GELU(fc(layer_norm(x, ln2.weight, ln2.bias)))))

    with heads of d / n_heads: q(h) (B, T, d) viewed as (B, T, H, d/H), transposed to (B, H, T, d/H) for
    ``attention`` and back. Submodules, exactly: ``ln1``, ``ln2`` (nn.LayerNorm(d)), ``q``, ``k``, ``v``, ``o``
    (nn.Linear(d, d)), ``fc`` (nn.Linear(d, 4d)), ``proj`` (nn.Linear(4d, d)); GELU is the exact (erf) one.
    Call the ``attention`` and ``layer_norm`` you are given: that is how the suite plugs in the attention
    and layer norm under test.
    """

    def __init__(self, d: int, n_heads: int, causal: bool = True, attention: Callable | None = None,
                 layer_norm: Callable | None = None, dropout: float = 0.0):
        super().__init__()
        raise NotImplementedError("gpt.Block")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("gpt.Block.forward")


def lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy: logits (B, T, V) at position t predict ids[:, t + 1]; the mean over the
    B (T - 1) predictions (the last position's logits predict nothing)."""
    raise NotImplementedError("gpt.lm_loss")


def lr_schedule(step: int, *, max_lr: float, warmup: int, total: int, min_lr: float = 0.0) -> float:
    """max_lr (step + 1) / warmup for step < warmup; then min_lr + (max_lr - min_lr)(1 + cos(pi p)) / 2 with
    p = (step - warmup) / (total - warmup); min_lr from step total on."""
    raise NotImplementedError("gpt.lr_schedule")


class AdamW(torch.optim.Optimizer):
    """AdamW with decoupled weight decay, as torch.optim.AdamW: ``AdamW(params_or_groups, lr, betas, eps,
    weight_decay)``, ``step()``, ``zero_grad()``, ``param_groups`` (the schedule sets ``group["lr"]`` before
    each step). A parameter without a gradient is left alone, weight decay included."""

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01):
        raise NotImplementedError("gpt.AdamW")


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale every gradient by min(1, max_norm / (norm + 1e-6)), norm = sqrt(sum |g|^2) over all gradients
    together; return that norm (measured before clipping). As torch.nn.utils.clip_grad_norm_."""
    raise NotImplementedError("gpt.clip_grad_norm")


def mask_tokens(ids: torch.Tensor, *, mask_id: int, vocab_size: int, special_ids: Sequence[int],
                generator: torch.Generator, p: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: (inputs, chosen). Each non-special position is chosen with probability p; a chosen
    one becomes mask_id (0.8), a uniform ordinary (non-special) id (0.1) or stays (0.1). Specials are never
    chosen; every draw comes from ``generator``; ``ids`` is not modified. ValueError for a vocab_size with
    no ordinary id, a mask_id that is not special, p outside [0, 1], ids outside [0, vocab_size)."""
    raise NotImplementedError("gpt.mask_tokens")


def masked_lm_loss(logits: torch.Tensor, ids: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy of ``ids`` over the ``chosen`` positions only (logits elsewhere never count);
    0, with a zero gradient, when nothing is chosen."""
    raise NotImplementedError("gpt.masked_lm_loss")
