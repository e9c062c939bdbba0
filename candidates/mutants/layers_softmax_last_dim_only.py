"""layers: softmax backward takes the inner product ⟨g, y⟩ along the last dim, whatever dim is."""

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import edited

COMPONENT = "layers"
CAUGHT_BY = ["test_softmax_backward_matches_autograd", "test_softmax_backward_sums_to_zero"]

layers = edited(ref, ("return y * (grad_y - (grad_y * y).sum(dim, keepdim=True))",
                       "return y * (grad_y - (grad_y * y).sum(-1, keepdim=True))"))
