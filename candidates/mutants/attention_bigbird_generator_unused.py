"""attention: BigBird seeds a generator but draws the random blocks from torch's global RNG (generator= not passed)."""

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import edit_source, patch
from fmspec.reference.attention import masks

COMPONENT = "attention"
CAUGHT_BY = ["test_bigbird_same_seed_same_mask", "test_sparse_equals_dense_under_its_mask"]

_masks = edit_source(masks, [("torch.randperm(len(rest), generator=gen)", "torch.randperm(len(rest))")])
attention = patch(ref, bigbird_mask=_masks.bigbird_mask)
