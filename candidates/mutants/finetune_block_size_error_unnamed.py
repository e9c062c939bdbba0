"""finetune: a block size that does not divide the weights raises ValueError("a block of 5 weights does not divide the 16 weights of base"), which does not name block_size."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = ["test_qlora_bad_arguments_raise", "test_apply_qlora_bad_targets_raise"]

finetune = patch(edit_source(ref, [
    ('raise ValueError(f"block_size={block_size} does not divide the {base.out_features}x{base.in_features} = "\n'
     '                             f"{n} weights of base (no padding rule: choose a divisor)")',
     'raise ValueError(f"a block of {block_size} weights does not divide the {n} weights of base")'),
]))
