"""lora: LoRALinear checks r < 0 instead of r < 1, so r = 0 gets past the check (and fails later dividing alpha by r)."""

import fmspec.reference.lora as ref
from fmspec.candidates.mutants import edited

COMPONENT = "lora"
CAUGHT_BY = ["test_bad_arguments_raise_value_error"]

lora = edited(ref, ('or r < 1:\n            raise ValueError(f"r must be an int >= 1',
                    'or r < 0:\n            raise ValueError(f"r must be an int >= 1'))
