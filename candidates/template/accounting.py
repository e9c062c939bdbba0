"""accounting: parameters, memory (in elements) and FLOPs of the lecture's transformer. Spec: docs/spec/accounting.md.

Symbols: d hidden size, L layers, T context, V vocabulary, n_heads heads, B batch. Every argument must be
an int >= 1 (floats > 0 for the FLOP and byte counts); anything else raises ValueError naming it.
"""


def transformer_params(d: int, L: int, V: int) -> int:
    """12 d^2 L + 2 d V."""
    raise NotImplementedError("accounting.transformer_params")


def forward_memory(d: int, T: int, V: int, n_heads: int = 1, B: int = 1) -> int:
    """B (4 d T + n_heads T^2 + V T): sufficient memory for a forward pass without a graph."""
    raise NotImplementedError("accounting.forward_memory")


def graph_memory(d: int, L: int, T: int, V: int, n_heads: int = 1, B: int = 1) -> int:
    """B (12 L d T + L n_heads T^2 + 2 V T): what reverse mode keeps for the backward pass."""
    raise NotImplementedError("accounting.graph_memory")


def checkpoint_memory(d: int, L: int, T: int, V: int, n_heads: int = 1, B: int = 1, option: int = 1) -> int:
    """Ignoring the V part: option 1, B (L d T + 12 d T + n_heads T^2); option 2, B (12 L d T).

    Any other option raises ValueError naming it.
    """
    raise NotImplementedError("accounting.checkpoint_memory")


def mfu(n_params: float, tokens: float, n_gpus: float, peak_flops: float, seconds: float) -> float:
    """Model FLOPs utilization as a fraction: 6 N D / (G P t)."""
    raise NotImplementedError("accounting.mfu")


def arithmetic_intensity(flops_per_s: float, bytes_per_s: float) -> float:
    """FLOPs per byte: flops_per_s / bytes_per_s."""
    raise NotImplementedError("accounting.arithmetic_intensity")


def model_bytes(n_params: float, bytes_per_param: float = 2) -> float:
    """Bytes to store the weights: n_params * bytes_per_param (bfloat16: 2)."""
    raise NotImplementedError("accounting.model_bytes")


def gpus_to_hold(n_params: float, bytes_per_param: float = 2, gpu_bytes: float = 80e9) -> int:
    """The fewest GPUs of gpu_bytes whose memory holds the weights: ceil(model_bytes / gpu_bytes)."""
    raise NotImplementedError("accounting.gpus_to_hold")
