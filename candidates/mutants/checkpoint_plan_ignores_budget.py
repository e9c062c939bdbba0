"""checkpoint: plan returns the sqrt(n) plan whatever the memory budget."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import patch

COMPONENT = "checkpoint"
CAUGHT_BY = ["test_plan_under_budget_uses_fewest_segments", "test_plan_rejects_budget_below_least_memory"]


def plan(n_blocks, memory_budget=None):
    return ref.plan(n_blocks)  # bug: the budget is never looked at


checkpoint = patch(ref, plan=plan)
