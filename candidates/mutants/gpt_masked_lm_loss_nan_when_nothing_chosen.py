"""gpt: the masked-LM loss divides by the number chosen, NaN (0 / 0) for a batch where none is."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_masked_lm_loss_with_nothing_chosen_is_zero"]

copy = edited(ref, ("return nll.gather(-1, ids[chosen][:, None]).sum() / max(int(chosen.sum()), 1)",
                    "return nll.gather(-1, ids[chosen][:, None]).sum() / chosen.sum()"))
gpt = patch(ref, masked_lm_loss=copy.masked_lm_loss)  # the edited masked_lm_loss only
