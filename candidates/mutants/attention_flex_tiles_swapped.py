"""attention: the FlexAttention block mask lists partly visible tiles as full and entirely visible ones as partial."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch, rebind
from fmspec.reference.attention import efficient, flex

COMPONENT = "attention"
CAUGHT_BY = ["test_block_mask_tiles_cover_the_mask", "test_compiled_flex_attention_with_block_mask_equals_dense"]
CAUGHT_BY_GPU = ["test_sparse_long_sequence_on_cuda_equals_dense"]

_flex = edit_source(flex, [("partial.append((count > 0) & (count < BLOCK * BLOCK))", "partial.append(count == BLOCK * BLOCK)"),
                           ("full.append(count == BLOCK * BLOCK)", "full.append((count > 0) & (count < BLOCK * BLOCK))")])
attention = patch(ref, block_mask=_flex.block_mask, sparse=rebind(efficient.sparse, flex=_flex))
