"""finetune: QLoRA's int8 codes are truncated toward zero instead of rounded (an error of up to a whole step)."""

import torch

import fmspec.reference.finetune as ref
import fmspec.reference.quant as refq
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "finetune"
CAUGHT_BY = [
    "test_qlora_worked_example",
    "test_qlora_state_quantizes_the_base",
]


def truncated(w, block_size):
    _, scale = refq.absmax_quantize(w, block_size=block_size)
    c = refq.Q_MAX / torch.where(scale > 0, scale * refq.Q_MAX, torch.ones_like(scale))  # 127 / absmax
    q = torch.trunc(w.reshape(-1, block_size) * c[:, None]).to(torch.int8)  # (n_blocks, block_size)
    return q.reshape(w.shape), scale


finetune = patch(edit_source(ref, [
    ("q, scale = refq.absmax_quantize(w, block_size=block_size)",
     "q, scale = truncated(w, block_size)"),
], truncated=truncated))
