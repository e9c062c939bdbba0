"""gpt: flash attention returns flash-attn's (B, T, H, D) layout instead of the contract's (B, H, T, D)."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_flash_in_place_of_dense_gives_the_same_curve"]


def flash_attention(q, k, v, causal=False, scale=None, return_lse=False, block_q=None, block_k=None):
    out = ref.flash_attention(q, k, v, causal=causal, scale=scale, return_lse=return_lse, block_q=block_q,
                              block_k=block_k)
    if return_lse:
        return out[0].transpose(1, 2), out[1]
    return out.transpose(1, 2)


flash = patch(ref, flash_attention=flash_attention)
