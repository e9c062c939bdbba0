"""Counting parameters, memory and FLOPs (lecture 003: "Transformer Memory: Forward & Computational
Graph", "Checkpointing (B = 1 case)", "Let's return to AD for some big models", "Bulk metrics for GPU
performance").

Symbols as on the slides: d hidden size, B batch size, T context, L layers, V vocabulary, H = N_heads.
Memory is counted in elements (multiply by the bytes of the dtype); every activation term scales with B.

    parameters                 12 d^2 L + 2 d V        W_Q, W_K, W_V (3d^2), W_1, W_2 (4d^2 each), W_proj (d^2)
                                                       a layer; W_embed and W_unembed (dV each)
    forward memory             B (4dT + H T^2 + VT)    the largest live tensors of a forward pass: the MLP's
                                                       4d-wide hidden, one T x T matrix a head, the logits
    graph memory               B (12 L dT + L H T^2 + 2 VT)     what reverse mode keeps for backward
    checkpoint, option 1       B (L dT + 12 dT + H T^2)  the L block inputs + one block rematerialized
    checkpoint, option 2       B (12 L dT)              everything but the T x T attention matrices
                               (both "ignoring the V part", as the lecture does)
    MFU                        6 N D / (G P t)         N parameters, D tokens, G GPUs of peak P FLOP/s, t seconds
    arithmetic intensity       FLOP/s / (bytes/s)      FLOPs a byte moved must carry to keep the GPU busy

Worked examples (lecture 003):
- Llama 3 405B: 16.5e12 tokens on 16e3 H100s (1671e12 FLOP/s bf16 dense) in 54 days:
  MFU = 6 * 405e9 * 16.5e12 / (16e3 * 1671e12 * 54 * 24 * 3600) = 0.321 -> "32%".
- H100: 5.4e14 FLOP/s achieved (0.32 * 1671e12) over 3.35e12 bytes/s = 161 -> "160 FLOPs/byte".
- bfloat16 weights, 2 bytes a parameter: Llama 3.1 400B needs 0.8e12 bytes, 10 H100s of 80 GB.

The reference model these formulas describe is ``reference/tiny_gpt.py``; its docstring counts what
autograd actually saves (the lecture's 12 dT a layer is rounded up from the 10 dT that model saves).
"""

from __future__ import annotations

import math


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def _positive(name: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or math.isinf(value):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def transformer_params(d: int, L: int, V: int) -> int:
    """12 d^2 L + 2 d V: the lecture's transformer without biases or layer norms."""
    d, L, V = _positive_int("d", d), _positive_int("L", L), _positive_int("V", V)
    return 12 * d * d * L + 2 * d * V


def forward_memory(d: int, T: int, V: int, n_heads: int = 1, B: int = 1) -> int:
    """B (4dT + N_heads T^2 + VT): sufficient memory for a forward pass that keeps no graph."""
    d, T, V = _positive_int("d", d), _positive_int("T", T), _positive_int("V", V)
    H, B = _positive_int("n_heads", n_heads), _positive_int("B", B)
    return B * (4 * d * T + H * T * T + V * T)


def graph_memory(d: int, L: int, T: int, V: int, n_heads: int = 1, B: int = 1) -> int:
    """B (12 L dT + L N_heads T^2 + 2 VT): the memory created in the graph for reverse mode."""
    d, L, T, V = _positive_int("d", d), _positive_int("L", L), _positive_int("T", T), _positive_int("V", V)
    H, B = _positive_int("n_heads", n_heads), _positive_int("B", B)
    return B * (12 * L * d * T + L * H * T * T + 2 * V * T)


def checkpoint_memory(d: int, L: int, T: int, V: int, n_heads: int = 1, B: int = 1, option: int = 1) -> int:
    """Memory of the lecture's two checkpointing options, ignoring the V part.

    option 1: checkpoint every block input (L dT) and rematerialize one block at a time (12 dT + N_heads T^2).
    option 2: keep everything but the T x T attention matrices (12 L dT).
    """
    d, L, T, V = _positive_int("d", d), _positive_int("L", L), _positive_int("T", T), _positive_int("V", V)
    H, B = _positive_int("n_heads", n_heads), _positive_int("B", B)
    if option == 1 and not isinstance(option, bool):
        return B * (L * d * T + 12 * d * T + H * T * T)
    if option == 2:
        return B * 12 * L * d * T
    raise ValueError(f"option must be 1 or 2, got {option!r}")


def mfu(n_params: float, tokens: float, n_gpus: float, peak_flops: float, seconds: float) -> float:
    """Model FLOPs utilization, a fraction: 6 N D / (G P t) (forward 2ND + backward 4ND over what G GPUs could do)."""
    n, D = _positive("n_params", n_params), _positive("tokens", tokens)
    G, P, t = _positive("n_gpus", n_gpus), _positive("peak_flops", peak_flops), _positive("seconds", seconds)
    return 6 * n * D / (G * P * t)


def arithmetic_intensity(flops_per_s: float, bytes_per_s: float) -> float:
    """FLOPs per byte: FLOP/s over memory bandwidth (the intensity at which compute and memory balance)."""
    return _positive("flops_per_s", flops_per_s) / _positive("bytes_per_s", bytes_per_s)


def model_bytes(n_params: float, bytes_per_param: float = 2) -> float:
    """Memory to store the weights: n_params * bytes_per_param (bfloat16: 2 bytes)."""
    return _positive("n_params", n_params) * _positive("bytes_per_param", bytes_per_param)


def gpus_to_hold(n_params: float, bytes_per_param: float = 2, gpu_bytes: float = 80e9) -> int:
    """The fewest GPUs of ``gpu_bytes`` whose memory holds the weights: ceil(model_bytes / gpu_bytes)."""
    need, per_gpu = model_bytes(n_params, bytes_per_param), _positive("gpu_bytes", gpu_bytes)
    k = math.ceil(need / per_gpu)
    while k > 1 and (k - 1) * per_gpu >= need:  # the division may round up past an exact multiple
        k -= 1
    while k * per_gpu < need:
        k += 1
    return k
