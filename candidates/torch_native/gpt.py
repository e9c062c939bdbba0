"""gpt from torch's own pieces: ``F.embedding``, a block of ``nn.LayerNorm``/``nn.Linear``/``nn.GELU``/
``nn.Dropout`` whose attention defaults to ``F.scaled_dot_product_attention``, ``F.cross_entropy``,
``torch.optim.AdamW`` and ``torch.nn.utils.clip_grad_norm_``; the masking of transformers'
``DataCollatorForLanguageModeling``, written in torch.

Where torch (or transformers) differs from the contract, and what this module does about it:

- ``lr_schedule`` is left out (missing): torch's schedulers (``LinearLR`` then ``CosineAnnealingLR``
  chained by ``SequentialLR``) are objects stepped once per step, not a function of the step.
- ``nn.MultiheadAttention`` is not used: its fused ``in_proj_weight`` has no ``q``/``k``/``v`` modules for
  LoRA to wrap and it computes attention itself, while the contract's block calls the ``attention`` it is
  given (SDPA when none is).
- ``masked_lm_loss``: ``F.cross_entropy(..., ignore_index=-100)`` is NaN when no position is chosen (a mean
  over nothing); the contract wants 0, so that case returns 0.
- ``mask_tokens``: the collator draws its random replacements from the whole vocabulary, special tokens
  included; the contract draws from the ordinary ids only, and so does this.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

AdamW = torch.optim.AdamW


def clip_grad_norm(params, max_norm):
    """torch's ``clip_grad_norm_`` under the contract's parameter names."""
    return torch.nn.utils.clip_grad_norm_(params, max_norm)


def embed(ids: torch.Tensor, token_table: torch.Tensor, position_table: torch.Tensor) -> torch.Tensor:
    T, V = ids.shape[-1], token_table.shape[0]
    if T > position_table.shape[0]:
        raise ValueError(f"context T={T} is longer than the positional table ({position_table.shape[0]} positions)")
    if position_table.shape[-1] != token_table.shape[-1]:
        raise ValueError(f"position_table has width {position_table.shape[-1]}, token_table {token_table.shape[-1]}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= V):
        raise ValueError(f"ids must lie in [0, {V})")
    return F.embedding(ids, token_table) + position_table[:T]


def _sdpa(q, k, v, causal=False):
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal)


class Block(nn.Module):
    def __init__(self, d: int, n_heads: int, causal: bool = True, attention=None, layer_norm=None,
                 dropout: float = 0.0):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"n_heads={n_heads} must divide d={d}")
        self.n_heads, self.causal = n_heads, causal
        self.attention = attention or _sdpa
        self.layer_norm = layer_norm or (lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b))
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.fc, self.proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.act, self.drop = nn.GELU(), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, d = x.shape
        h = self.layer_norm(x, self.ln1.weight, self.ln1.bias)
        q, k, v = (m(h).unflatten(-1, (self.n_heads, -1)).transpose(1, 2) for m in (self.q, self.k, self.v))
        a = self.attention(q, k, v, causal=self.causal).transpose(1, 2).flatten(2)
        x = x + self.drop(self.o(a))
        return x + self.drop(self.proj(self.act(self.fc(self.layer_norm(x, self.ln2.weight, self.ln2.bias)))))


def lm_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())


def mask_tokens(ids: torch.Tensor, *, mask_id: int, vocab_size: int, special_ids: Sequence[int],
                generator: torch.Generator, p: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    specials = torch.tensor(sorted(set(special_ids)), device=ids.device)
    if vocab_size <= len(specials) or mask_id not in specials.tolist() or not 0 <= p <= 1:
        raise ValueError(f"bad masking arguments: vocab_size={vocab_size}, mask_id={mask_id}, p={p}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size})")
    # the collator's algorithm: Bernoulli(p) over the non-special positions, 80% of those masked,
    # half of the rest replaced at random
    probability = torch.full(ids.shape, p, device=ids.device).masked_fill(torch.isin(ids, specials), 0.0)
    chosen = torch.bernoulli(probability, generator=generator).bool()
    masked = torch.bernoulli(torch.full(ids.shape, 0.8, device=ids.device), generator=generator).bool() & chosen
    randomized = torch.bernoulli(torch.full(ids.shape, 0.5, device=ids.device), generator=generator).bool()
    randomized &= chosen & ~masked
    ordinary = torch.ones(vocab_size, dtype=torch.bool, device=ids.device)
    ordinary[specials] = False
    pool = ordinary.nonzero().flatten()
    random = pool[torch.randint(len(pool), ids.shape, generator=generator, device=ids.device)]
    inputs = ids.masked_fill(masked, mask_id)
    return torch.where(randomized, random, inputs), chosen


def masked_lm_loss(logits: torch.Tensor, ids: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
    if not bool(chosen.any()):
        return (logits * 0).sum()
    labels = torch.where(chosen, ids, -100)
    return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
