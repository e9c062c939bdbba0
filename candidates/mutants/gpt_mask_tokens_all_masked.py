"""gpt: every chosen position becomes [MASK] (no 10% random tokens, no 10% kept)."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_mask_tokens_statistics"]

copy = edited(ref, ("inputs = torch.where(chosen & (how < 0.8), ", "inputs = torch.where(chosen, "),
              ("inputs = torch.where(chosen & (how >= 0.8) & (how < 0.9), random, inputs)", "pass"))
gpt = patch(ref, mask_tokens=copy.mask_tokens)  # the edited mask_tokens only; every other piece is the reference's
