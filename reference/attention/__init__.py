"""attention: scaled dot-product, multi-head, sparse patterns (as masks and as efficient implementations),
linear/kernel attention with Performer features, and Linformer. Spec: docs/spec/attention.md.

Seeds 004 (scaled dot-product, multi-head self-attention), 001 (X-formers: fixed, factorized and random
patterns, low-rank and kernel methods; BigBird), 000 (sparse attention, Longformer).

Layout (B, H, T, D); masks are bool, True = may attend, broadcastable to (B, H, Tq, Tk); causal is
top-left aligned (query i sees keys j <= i); a query with no visible key outputs zeros.

=================  ==========================================================================
``dense``          scaled_dot_product, multi_head (and grouped-query attention)
``masks``          sliding_window_mask, longformer_mask, bigbird_mask, strided_mask, fixed_mask
``efficient``      sparse(q, k, v, pattern, **args): each mask's pattern in O(T · W) memory
``flex``           block_mask(pattern, T, device, **args): the pattern as a FlexAttention BlockMask, the
                   path ``sparse`` takes on CUDA for T >= 1024
``kernel``         linear (elu + 1 features, prefix sums when causal), performer (FAVOR+)
``lowrank``        linformer
=================  ==========================================================================
"""

from fmspec.reference.attention.dense import multi_head, scaled_dot_product
from fmspec.reference.attention.kernel import linear, performer
from fmspec.reference.attention.lowrank import linformer
from fmspec.reference.attention.masks import bigbird_mask, fixed_mask, longformer_mask, sliding_window_mask, strided_mask
from fmspec.reference.attention.efficient import sparse
from fmspec.reference.attention.flex import block_mask

__all__ = ["scaled_dot_product", "multi_head", "sliding_window_mask", "longformer_mask", "bigbird_mask",
           "strided_mask", "fixed_mask", "sparse", "block_mask", "linear", "performer", "linformer"]
