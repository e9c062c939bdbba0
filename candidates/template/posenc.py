"""posenc: sinusoidal positional encoding. Spec: docs/spec/posenc.md."""

import torch


def sinusoidal(num_positions: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """A ``(num_positions, dim)`` float64 tensor: PE[p, 2i] = sin(p / base^(2i/dim)), PE[p, 2i+1] = cos(...).

    An odd ``dim`` ends with a sin column. Bad arguments raise ValueError naming the argument.
    """
    raise NotImplementedError("posenc.sinusoidal")
