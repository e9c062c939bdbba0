"""Hypothesis strategies and seeded tensors shared by every suite (imported ``as ss``).

Tensors are drawn as (shape, seed) and filled from a seeded ``torch.Generator``: hypothesis shrinks the
shape and the seed, which keeps failing examples small and readable, and large tensors cheap to draw.
Strategies that only one component uses live in that component's ``_<component>_helpers.py``.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def seeds() -> st.SearchStrategy[int]:
    return SEEDS


def sizes(min_value: int = 1, max_value: int = 16) -> st.SearchStrategy[int]:
    """A dimension length; shrinks towards ``min_value``."""
    return st.integers(min_value=min_value, max_value=max_value)


def even_sizes(min_value: int = 2, max_value: int = 32) -> st.SearchStrategy[int]:
    return st.integers(min_value=min_value // 2, max_value=max_value // 2).map(lambda n: 2 * n)


def randn(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64, device: str = "cpu",
          scale: float = 1.0) -> torch.Tensor:
    """Standard normal entries times ``scale``, drawn in float64 on the CPU, then cast: the same values for
    every dtype and device (the float64 oracle sees exactly what the low-precision candidate sees, once cast)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
    return x.to(dtype=dtype, device=device)


def qkv(b: int, h: int, tq: int, tk: int, d: int, dv: int | None = None, *, seed: int,
        dtype: torch.dtype = torch.float64, device: str = "cpu", scale: float = 1.0):
    """Attention inputs q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv) (Dv = D unless given), from
    seeds ``seed``, ``seed + 1``, ``seed + 2`` with :func:`randn`; ``scale`` multiplies q and k (sharper or
    flatter softmax weights), never v. A shapes dict with exactly these keys passes as ``qkv(**s)``."""
    dv = d if dv is None else dv
    return (randn((b, h, tq, d), seed, dtype, device, scale), randn((b, h, tk, d), seed + 1, dtype, device, scale),
            randn((b, h, tk, dv), seed + 2, dtype, device))


def random_mask(shape: tuple[int, ...], seed: int, p: float = 0.7) -> torch.Tensor:
    """A bool tensor, True with probability ``p``, from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=gen) < p
