"""gpt: BERT's masking chooses positions with torch's global random state, not the generator it is given."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_mask_tokens_is_seeded"]

copy = edited(ref, ("chosen = (torch.rand(ids.shape, generator=generator, device=ids.device) < p) & ~special",
                    "chosen = (torch.rand(ids.shape, device=ids.device) < p) & ~special"))
gpt = patch(ref, mask_tokens=copy.mask_tokens)  # the edited mask_tokens only; every other piece is the reference's own
