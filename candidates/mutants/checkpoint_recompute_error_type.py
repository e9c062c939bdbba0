"""checkpoint: a recompute that is not callable raises ValueError, not the TypeError the contract names."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edited

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_selective_bad_recompute_raises_type_error"]

checkpoint = edited(ref, ('raise TypeError(f"recompute must be a callable Tensor -> bool, got {recompute!r}")',
                          'raise ValueError(f"recompute must be a callable Tensor -> bool, got {recompute!r}")'))
