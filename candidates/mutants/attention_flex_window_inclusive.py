"""attention: the FlexAttention sliding-window mask_mod keeps |i - j| <= window, one key too many on each side."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch, rebind
from fmspec.reference.attention import efficient, flex

COMPONENT = "attention"
CAUGHT_BY = ["test_block_mask_equals_pattern_mask", "test_flex_attention_with_block_mask_equals_dense"]
CAUGHT_BY_GPU = ["test_sparse_long_sequence_on_cuda_equals_dense"]

_flex = edit_source(flex, [("else diff.abs() < window", "else diff.abs() <= window")])
attention = patch(ref, block_mask=_flex.block_mask, sparse=rebind(efficient.sparse, flex=_flex))
