"""checkpoint: the rematerializing replay keeps its saved tensors as themselves: a cycle through autograd that leaks a forward pass per step."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edited

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_selective_frees_everything_after_backward"]

checkpoint = edited(ref, ("            return None\n", "            return t\n"),
                    ("saved_tensors_hooks(keep, lambda _: None)", "saved_tensors_hooks(keep, lambda t: t)"))
