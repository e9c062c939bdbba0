"""attention: Linformer scales the scores by 1/sqrt(k), the projected length, instead of 1/sqrt(D)."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch


COMPONENT = "attention"
CAUGHT_BY = ["test_linformer_equals_attention_on_projected_keys_values", "test_linformer_with_identity_projections_is_full_attention"]


def linformer(q, k, v, e, f):
    ref.linformer(q, k, v, e, f)  # argument checks
    return ref.scaled_dot_product(q, e @ k, f @ v, scale=e.shape[0] ** -0.5)  # bug: the paper's k is not d_k


attention = patch(ref, linformer=linformer)
