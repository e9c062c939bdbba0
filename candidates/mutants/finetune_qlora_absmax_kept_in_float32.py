"""finetune: QLoRA keeps the float32 NF4 block constants beside their double-quantized codes (stores more, not less)."""

import fmspec.reference.finetune as ref
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_stored_bits_per_weight",
]

finetune = patch(edit_source(ref, [
    ('self.register_buffer("absmax_mean", state.absmax_mean)  # () float32',
     'self.register_buffer("absmax_mean", state.absmax_mean)  # () float32\n'
     '            self.register_buffer("absmax", w.reshape(-1, block_size).abs().amax(dim=1))  # (n_blocks,) float32'),
]))
