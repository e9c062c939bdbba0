"""gpt: the learning rate is max_lr at every step (no warmup, no cosine decay)."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_lr_schedule_worked_example", "test_lr_schedule_warmup_then_cosine"]

copy = edited(ref, ("    if step < warmup:\n        return max_lr * (step + 1) / warmup\n", "    return max_lr\n"))
gpt = patch(ref, lr_schedule=copy.lr_schedule)  # the edited lr_schedule only; every other piece is the reference's own
