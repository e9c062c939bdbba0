"""layers: a shape mismatch raises ValueError("shape mismatch: ...") without saying which argument."""

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import edited

COMPONENT = "layers"
CAUGHT_BY = ["test_bad_arguments_raise"]

layers = edited(
    ref,
    ('raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)} ({what})")',
     'raise ValueError(f"shape mismatch: {tuple(t.shape)} vs {tuple(shape)}")'))
