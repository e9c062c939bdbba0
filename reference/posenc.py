"""Sinusoidal positional encoding (Vaswani et al., 2017, sec. 3.5; lecture 004, "Positional Encoding").

    PE[pos, 2i]   = sin(pos / base^(2i / d))
    PE[pos, 2i+1] = cos(pos / base^(2i / d))

Columns are interleaved: (sin, cos) pairs share the frequency w_i = base^(-2i/d), from w_0 = 1 down to
nearly 1/base. Every pair has unit norm, so all values lie in [-1, 1], and for a fixed offset k

    [PE[pos+k, 2i], PE[pos+k, 2i+1]] = R(k·w_i) [PE[pos, 2i], PE[pos, 2i+1]],
    R(θ) = [[cos θ, sin θ], [-sin θ, cos θ]]

a rotation that depends on k and not on pos ("PE_{pos+k} is a linear function of PE_pos").
For an odd d the last column is a lone sin with i = (d - 1) / 2.

Worked example: PE[0] = [0, 1, 0, 1, ...] (sin 0, cos 0, ...).
"""

from __future__ import annotations

import torch


def sinusoidal(num_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """Encodings of positions 0..num_positions-1: a ``(num_positions, dim)`` float64 tensor."""
    if not isinstance(num_positions, int) or isinstance(num_positions, bool) or num_positions < 0:
        raise ValueError(f"num_positions must be an int >= 0, got {num_positions!r}")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}")
    if not base > 1.0:
        raise ValueError(f"base must be > 1, got {base!r}")
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (T, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)  # (ceil(d/2),) = 0, 2, 4, ...
    freq = base ** (-two_i / dim)  # w_i = base^(-2i/d)
    angle = pos * freq  # (T, ceil(d/2))
    pe = torch.empty(num_positions, dim, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return pe
