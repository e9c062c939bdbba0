"""lora: the rank error says "rank" instead of naming r, and an unmatched target is reported without naming targets."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited

COMPONENT = "lora"
CAUGHT_BY = ["test_bad_arguments_raise_value_error", "test_apply_lora_bad_targets_raise"]

lora = edited(ref, ('raise ValueError(f"r must be an int >= 1, got {r!r}")',
                    'raise ValueError(f"rank must be an int >= 1, got {r!r}")'),
              ('raise ValueError(f"{argument}: {unmatched!r} match no module of the model")',
               'raise ValueError(f"{unmatched!r} match no module of the model")'))
