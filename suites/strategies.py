"""Hypothesis strategies shared by every suite (imported ``as hh``).

Tensors are drawn as (shape, seed) and filled from a seeded ``torch.Generator``: hypothesis shrinks the
shape and the seed, which keeps failing examples small and readable, and large tensors cheap to draw.
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
