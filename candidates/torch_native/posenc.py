"""posenc from torch ops only: the angles as an outer product, sin and cos stacked then interleaved."""

import torch


def sinusoidal(num_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    if not isinstance(num_positions, int) or num_positions < 0:
        raise ValueError(f"num_positions must be an int >= 0, got {num_positions!r}")
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an int >= 1, got {dim!r}")
    half = (dim + 1) // 2
    inv_freq = 1.0 / base ** (torch.arange(half, dtype=torch.float64) * 2 / dim)
    angle = torch.outer(torch.arange(num_positions, dtype=torch.float64), inv_freq)  # (T, ceil(d/2))
    pe = torch.stack([angle.sin(), angle.cos()], dim=-1)  # (T, ceil(d/2), 2)
    return pe.reshape(num_positions, 2 * half)[:, :dim]
