"""gpt: BERT's masking accepts a vocabulary with no ordinary token beside the specials (a RuntimeError later)."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_mask_tokens_bad_arguments_raise_value_error"]

copy = edited(ref, ("    if not isinstance(vocab_size, int) or vocab_size <= len(specials):\n",
                    "    if not isinstance(vocab_size, int):\n"))
gpt = patch(ref, mask_tokens=copy.mask_tokens)  # the edited mask_tokens only; every other piece is the reference's own
