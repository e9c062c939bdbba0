"""attention: grouped-query kv heads repeated with .repeat (head h reads kv head h % n_kv) instead of repeat_interleave."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch


def multi_head(x, w_q, w_k, w_v, w_o, n_heads, causal=False, n_kv_heads=None):
    b, t, d = x.shape
    n_kv = n_heads if n_kv_heads is None else n_kv_heads
    dh = d // n_heads
    q = (x @ w_q.T).view(b, t, n_heads, dh).transpose(1, 2)
    k = (x @ w_k.T).view(b, t, n_kv, dh).transpose(1, 2).repeat(1, n_heads // n_kv, 1, 1)  # tiles: h % n_kv
    v = (x @ w_v.T).view(b, t, n_kv, dh).transpose(1, 2).repeat(1, n_heads // n_kv, 1, 1)
    heads = ref.scaled_dot_product(q, k, v, causal=causal)
    return heads.transpose(1, 2).reshape(b, t, d) @ w_o.T


COMPONENT = "attention"
CAUGHT_BY = ["test_grouped_query_heads_share_kv_in_order", "test_multi_head_bad_arguments_raise"]

attention = patch(ref, multi_head=multi_head)
