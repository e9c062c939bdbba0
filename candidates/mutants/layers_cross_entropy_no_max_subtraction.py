"""layers: cross-entropy backward takes exp(z) / Σ exp(z) without subtracting the row max (float32 overflows)."""

import torch

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import edited

COMPONENT = "layers"
CAUGHT_BY = ["test_cross_entropy_backward_matches_autograd"]

layers = edited(
    ref,
    ("    p = torch.softmax(logits, dim=-1)  # (..., C)\n",
     "    e = torch.exp(logits)\n    p = e / e.sum(-1, keepdim=True)  # (..., C)\n"))
