"""attention: strided mask without j <= i: |i - j| < l or (i - j) mod l = 0 on both sides, future keys included."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch

COMPONENT = "attention"
CAUGHT_BY = ["test_mask_matches_its_definition", "test_causal_patterns_have_no_future_key"]


def strided_mask(T, stride):
    return ref.strided_mask(T, stride) | ref.strided_mask(T, stride).T


attention = patch(ref, strided_mask=strided_mask)
