"""attention: mask added as -1e9 to the scores (scores + (~mask) * -1e9), masked keys and values used as given."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.attention import dense

COMPONENT = "attention"
CAUGHT_BY = ["test_masked_keys_and_values_change_nothing", "test_fully_masked_row_gives_zeros_and_finite_gradients"]

_dense = edit_source(dense, [
    ("    k, v = zero_unseen_keys(k, v, allowed)\n", ""),
    ("weights = masked_softmax(scores, allowed)",
     "weights = torch.softmax(scores if allowed is None else scores + (~allowed).to(scores.dtype) * -1e9, dim=-1)"),
])
attention = patch(ref, scaled_dot_product=_dense.scaled_dot_product)
