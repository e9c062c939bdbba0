"""flash: a bad block size raises ValueError("block sizes must be positive ints"), which does not say whether block_q or block_k."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = ["test_bad_arguments_raise"]

flash = edited(ref, ('raise ValueError(f"{name} must be a positive int or None, got {b!r}")',
                     'raise ValueError(f"block sizes must be positive ints or None, got {b!r}")'))
