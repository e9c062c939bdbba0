"""attention: the FlexAttention BigBird mask draws its random blocks with seed + 1: a valid BigBird pattern, but not bigbird_mask's."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch, rebind
from fmspec.reference.attention import efficient, flex

COMPONENT = "attention"
CAUGHT_BY = ["test_block_mask_equals_pattern_mask", "test_flex_attention_with_block_mask_equals_dense"]
CAUGHT_BY_GPU = ["test_sparse_long_sequence_on_cuda_equals_dense"]

_flex = edit_source(flex, [("rows = masks.bigbird_layout(n_blocks, n_random, n_window, n_global, seed)",
                            "rows = masks.bigbird_layout(n_blocks, n_random, n_window, n_global, seed + 1)")])
attention = patch(ref, block_mask=_flex.block_mask, sparse=rebind(efficient.sparse, flex=_flex))
