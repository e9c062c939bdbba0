"""layers: embedding backward assigns rows (dW[ids] = g), so a repeated token keeps only one gradient."""

import torch

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import patch

COMPONENT = "layers"
CAUGHT_BY = [
    "test_embedding_backward_worked_example",
    "test_embedding_backward_matches_autograd",
    "test_bad_arguments_raise",
    "test_embedding_backward_rows_of_absent_ids_are_zero",
]


def embedding_backward(ids, num_embeddings, grad_y):
    d = grad_y.shape[-1]
    grad_w = torch.zeros(num_embeddings, d, dtype=grad_y.dtype)
    grad_w[ids.reshape(-1)] = grad_y.reshape(-1, d)
    return grad_w


layers = patch(ref, embedding_backward=embedding_backward)
