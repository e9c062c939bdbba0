"""layers: LoRA backward scales by alpha instead of alpha / r."""

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch

COMPONENT = "layers"
CAUGHT_BY = ["test_lora_backward_matches_autograd", "test_lora_duplicated_rank_gives_same_grad_x"]


def lora_backward(x, W, A, B, alpha, grad_y):
    return ref.lora_backward(x, W, A, B, alpha * A.shape[0], grad_y)  # (alpha · r) / r = alpha


layers = patch(ref, lora_backward=lora_backward)
