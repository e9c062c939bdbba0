"""quant: a bad block_size raises ValueError("expected an int >= 1"), which does not say which argument is wrong."""

import fmspec.reference.quant as ref
from fmspec.candidates.mutants import edited

COMPONENT = "quant"
CAUGHT_BY = ["test_bad_arguments_raise_value_error", "test_nf4_bad_block_size_raises"]

quant = edited(ref, ('raise ValueError(f"block_size must be an int >= 1, got {block_size!r}")',
                     'raise ValueError(f"expected an int >= 1, got {block_size!r}")'))
