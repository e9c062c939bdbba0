"""flash: a head dim the kernel lacks (D = 72) is zero-padded to the next one it has (128), and the default scale is taken from the padded D."""

import torch
import torch.nn.functional as F

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.flash_triton import SUPPORTED_HEAD_DIMS

COMPONENT = "flash"
CAUGHT_BY = []
CAUGHT_BY_GPU = ["test_unsupported_head_dim_is_a_clear_error_or_right"]
CAPABILITIES = {"flash": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]}}


def flash_attention(q, k, v, causal=False, scale=None, return_lse=False, block_q=None, block_k=None):
    D = q.shape[-1] if isinstance(q, torch.Tensor) else None
    padded = next((d for d in SUPPORTED_HEAD_DIMS if D is not None and d > D), None)
    if not (isinstance(q, torch.Tensor) and q.is_cuda and q.dim() == 4 and D not in SUPPORTED_HEAD_DIMS and padded
            and all(isinstance(t, torch.Tensor) and t.shape[-1] == D for t in (k, v))):
        return ref.flash_attention(q, k, v, causal, scale, return_lse, block_q, block_k)
    q, k, v = (F.pad(t, (0, padded - D)) for t in (q, k, v))  # zero columns: q·kᵀ is unchanged
    out = ref.flash_attention(q, k, v, causal, scale, return_lse, block_q, block_k)  # scale: 1/sqrt(padded)
    if return_lse:
        return out[0][..., :D], out[1]
    return out[..., :D]


flash = patch(ref, flash_attention=flash_attention)
