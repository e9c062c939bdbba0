"""attention: Linformer projects the values with E instead of F."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = [
    "test_linformer_equals_attention_on_projected_keys_values",
    "test_kernel_and_lowrank_bad_arguments_raise",
]


def linformer(q, k, v, e, f):
    return ref.linformer(q, k, v, e, e)


attention = patch(ref, linformer=linformer)
