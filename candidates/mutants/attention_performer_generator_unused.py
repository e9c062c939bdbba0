"""attention: Performer seeds a generator but draws its features from torch's global RNG (generator= not passed)."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.attention import kernel

COMPONENT = "attention"
CAUGHT_BY = ["test_performer_is_seeded", "test_causal_outputs_ignore_future_keys"]

_kernel = edit_source(kernel, [("torch.randn(n_features, d, generator=gen, dtype=torch.float64)",
                                "torch.randn(n_features, d, dtype=torch.float64)")])
attention = patch(ref, performer=_kernel.performer)
