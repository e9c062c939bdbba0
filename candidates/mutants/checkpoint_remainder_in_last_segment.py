"""checkpoint: the n % k leftover blocks all go to the last segment, which can be up to k - 1 blocks longer than the others."""

import fmspec.reference.checkpoint as ref
from fmspec.candidates.mutants import edited

COMPONENT = "checkpoint"
CAUGHT_BY = [
    "test_each_segment_rematerialized_once_last_first",
    "test_plan_fits_the_budget",
    "test_plan_has_round_sqrt_segments",
    "test_plan_memory_is_least_possible",
    "test_plan_under_budget_uses_fewest_segments",
    "test_plan_worked_examples",
]

checkpoint = edited(ref, ('    size, extra = divmod(n, k)  # the first `extra` segments hold size + 1 blocks\n'
                          '    return [i * size + min(i, extra) for i in range(k)]',
                          '    size = n // k  # the last segment also takes the n % k blocks left over\n'
                          '    return [i * size for i in range(k)]'))
