"""gpt: the next-token loss compares position t with ids[t], not ids[t + 1] (labels not shifted)."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_lm_loss_worked_example", "test_lm_loss_is_shifted_cross_entropy",
             "test_debug_run_trains_like_the_reference"]

copy = edited(ref, ("return tiny_gpt.log_loss(logits[:, :-1], ids[:, 1:])", "return tiny_gpt.log_loss(logits, ids)"))
gpt = patch(ref, lm_loss=copy.lm_loss)  # the edited lm_loss only; every other piece is the reference's own
