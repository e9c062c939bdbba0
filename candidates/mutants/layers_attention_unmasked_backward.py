"""layers: attention backward recomputes P without the causal mask (the forward pass was causal)."""

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch

COMPONENT = "layers"
CAUGHT_BY = ["test_attention_backward_matches_autograd", "test_attention_causal_gradient_flows_only_to_the_past"]


def attention_backward(x, w_q, w_k, w_v, w_o, n_heads, grad_y, causal=True):
    return ref.attention_backward(x, w_q, w_k, w_v, w_o, n_heads, grad_y, causal=False)


layers = patch(ref, attention_backward=attention_backward)
