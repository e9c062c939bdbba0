"""checkpoint: plan under a budget estimates the longest segment as n // k (floor, not ceil), so its plan can need more than the budget."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edited

COMPONENT = "checkpoint"
CAUGHT_BY = [
    "test_plan_fits_the_budget",
    "test_plan_rejects_budget_below_least_memory",
    "test_plan_under_budget_uses_fewest_segments",
]

checkpoint = edited(ref, ('if k + math.ceil(n_blocks / k) <= memory_budget:',
                          'if k + n_blocks // k <= memory_budget:'))
