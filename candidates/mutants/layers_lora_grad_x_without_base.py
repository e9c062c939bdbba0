"""layers: LoRA backward leaves the frozen base out of dx ("W is frozen, so no gradient through it")."""

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch

COMPONENT = "layers"
CAUGHT_BY = ["test_lora_backward_matches_autograd", "test_lora_zero_b_gives_zero_grad_a"]


def lora_backward(x, W, A, B, alpha, grad_y):
    grad_x, grad_a, grad_b = ref.lora_backward(x, W, A, B, alpha, grad_y)
    return grad_x - grad_y @ W, grad_a, grad_b


layers = patch(ref, lora_backward=lora_backward)
