"""attention: "efficient" sparse attention that builds the (T, T) mask and runs dense attention: right values, O(T^2) memory."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = ["test_sparse_memory_is_linear_not_quadratic", "test_sparse_bad_arguments_raise"]


def sparse(q, k, v, pattern, **pattern_args):
    mask = getattr(ref, f"{pattern}_mask")(q.shape[-2], **pattern_args)
    return ref.scaled_dot_product(q, k, v, mask=mask)


attention = patch(ref, sparse=sparse)
