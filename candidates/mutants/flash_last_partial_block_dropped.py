"""flash: the forward loops over whole key blocks only: the last partial block is dropped."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ["test_equals_dense_attention", "test_block_size_invariance", "test_non_contiguous_inputs_work"]

flash = edited(ref, ('for j0 in range(0, Tk, block_k):',
                     'for j0 in range(0, Tk - block_k + 1, block_k):'))
