"""gpt: BERT's masking may choose [CLS], [SEP] and [PAD] positions like any other."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_mask_tokens_never_chooses_specials", "test_mask_tokens_statistics"]

copy = edited(ref, ("chosen = (torch.rand(ids.shape, generator=generator, device=ids.device) < p) & ~special",
                    "chosen = torch.rand(ids.shape, generator=generator, device=ids.device) < p"))
gpt = patch(ref, mask_tokens=copy.mask_tokens)  # the edited mask_tokens only; every other piece is the reference's own
