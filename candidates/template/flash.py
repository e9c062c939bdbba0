"""flash: tiled exact attention with O(T·D) memory (FlashAttention). Spec: docs/spec/flash.md."""

import torch


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                    scale: float | None = None, return_lse: bool = False, block_q: int | None = None,
                    block_k: int | None = None):
    """softmax(scale · q kᵀ [causal]) v without materialising the Tq×Tk score matrix; differentiable.

    q (B, H, Tq, D), k and v (B, H, Tk, D); scale defaults to 1/sqrt(D); causal is top-left aligned
    (query i sees keys j <= i, like torch SDPA); a row with no visible key outputs 0 (and lse -inf).
    ``return_lse=True`` also returns the natural log-sum-exp of each row's scaled scores, (B, H, Tq),
    float32 (float64 for float64 inputs), differentiable. ``block_q``/``block_k`` are the tile sizes.
    The backward must save O(T·D) (recompute the blocks of P from the lse), never a Tq×Tk tensor.
    Bad arguments raise ValueError/TypeError naming the argument.
    """
    raise NotImplementedError("flash.flash_attention")
