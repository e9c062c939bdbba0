"""Oracles that several suites share (imported ``as orc``): each concept's formula, written out once.

An oracle here is the textbook formula computed densely by torch, never a candidate's or the reference's
code. On float64 inputs it is the answer a test judges against; on low-precision inputs it is the plain
same-dtype computation whose error sets the bar (``ah.assert_close(baseline=)``, flash-attention's rule).
It is differentiable, so torch.autograd through it is the oracle for gradients.

Oracles that only one component uses live in that component's ``_<component>_helpers.py``.
"""

from __future__ import annotations

import math

import torch


def causal_mask(tq: int, tk: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(Tq, Tk) bool, top-left aligned: query i sees key j iff j <= i (torch SDPA's ``is_causal``).

    ``causal_mask(2, 3)`` -> ``[[True, False, False], [True, True, False]]``."""
    return torch.arange(tk, device=device)[None, :] <= torch.arange(tq, device=device)[:, None]


def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
                    causal: bool = False, scale: float | None = None, return_lse: bool = False):
    """softmax(scale · q kᵀ, over the visible keys) v, densely, in q's dtype; with ``return_lse`` also the
    row log-sum-exp of the visible scores.

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) -> out (..., Tq, Dv) [, lse (..., Tq)]. ``scale``
    defaults to 1/sqrt(D); ``mask`` (bool, broadcastable to (..., Tq, Tk)) is True where a query may see
    a key; ``causal`` adds :func:`causal_mask`. A row that sees no key gives 0 and lse -inf, and no NaN
    in any gradient.

    Worked example: q = [[0]], k = [[0], [0]], v = [[1], [3]], scale 1: both weights are 1/2, so
    out = [[2]] and lse = [log 2].
    """
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = (q @ k.transpose(-1, -2)) * scale  # (..., Tq, Tk)
    visible = None if mask is None else mask.to(s.device)
    if causal:
        below = causal_mask(s.shape[-2], s.shape[-1], s.device)
        visible = below if visible is None else visible & below
    if visible is not None:
        s = s.masked_fill(~visible, float("-inf"))
    p = torch.softmax(s, -1).nan_to_num(0.0)  # a row with no visible key: 0/0 -> 0
    out = p @ v  # (..., Tq, Dv)
    return (out, torch.logsumexp(s, -1)) if return_lse else out
