"""finetune: insert_adapters and apply_qlora ignore a name that matches no module as long as another one matches."""

import fmspec.reference.finetune as ref
import fmspec.reference.lora as lora_ref
from fmspec.candidates.mutants import edited, patch, rebind

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_insert_adapters_bad_targets_raise",
    "test_apply_qlora_bad_targets_raise",
]

# the bug lives in the module selection finetune shares with lora (reference/lora.py: select_linears)
select_linears = edited(lora_ref, ('    if unmatched:\n'
                                   '        raise ValueError',
                                   '    if unmatched and not chosen:\n'
                                   '        raise ValueError')).select_linears

finetune = patch(ref, insert_adapters=rebind(ref.insert_adapters, select_linears=select_linears),
                 apply_qlora=rebind(ref.apply_qlora, select_linears=select_linears))
