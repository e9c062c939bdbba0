"""attention: softmax denominator detached (e / e.sum().detach()): right forward values, wrong gradients."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch, rebind
from fmspec.reference.attention import dense, efficient

COMPONENT = "attention"
CAUGHT_BY = ["test_gradients_match_torch_sdpa_float64", "test_sparse_gradients_match_dense"]

_dense = edit_source(dense, [("total = e.sum(dim=-1, keepdim=True)", "total = e.sum(dim=-1, keepdim=True).detach()")])
_gathered = rebind(efficient.gathered_attention, masked_softmax=_dense.masked_softmax)
attention = patch(ref, scaled_dot_product=_dense.scaled_dot_product,
                  sparse=rebind(efficient.sparse, gathered_attention=_gathered,
                                scaled_dot_product=_dense.scaled_dot_product))
