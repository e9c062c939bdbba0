"""checkpoint: plan uses int(sqrt(n)) segments (floor, not round): often as little memory, but not the contract's plan."""

import math

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import patch

COMPONENT = "checkpoint"
CAUGHT_BY = [
    "test_plan_has_round_sqrt_segments",
    "test_plan_worked_examples",
    "test_plan_bad_n_blocks_raise_value_error",
]


def plan(n_blocks, memory_budget=None):
    if memory_budget is not None:
        return ref.plan(n_blocks, memory_budget)
    return ref._boundaries(n_blocks, max(1, int(math.sqrt(n_blocks))))


checkpoint = patch(ref, plan=plan)
