"""attention: causal mask built with tril(1): query i also sees key i + 1, one step into the future."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.attention import dense

COMPONENT = "attention"
CAUGHT_BY = [
    "test_matches_torch_sdpa_float64",
    "test_causal_is_top_left_aligned",
    "test_causal_outputs_ignore_future_keys",
    "test_output_in_convex_hull_of_values",
]

_dense = edit_source(dense, [(".tril()  # (Tq, Tk): j <= i, top-left", ".tril(1)  # (Tq, Tk): j <= i + 1")])
attention = patch(ref, scaled_dot_product=_dense.scaled_dot_product)
