"""gpt: AdamW applies weight decay to parameters without a gradient (a frozen base drifts during LoRA)."""

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import edited, patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_adamw_matches_torch", "test_lora_finetune_trains_only_a_and_b"]

copy = edited(ref, ("                if p.grad is None:\n                    continue\n",
                    "                if p.grad is None:\n                    p.mul_(1 - lr * wd)\n"
                    "                    continue\n"))
gpt = patch(ref, AdamW=copy.AdamW)  # the edited AdamW only; every other piece is the reference's own
