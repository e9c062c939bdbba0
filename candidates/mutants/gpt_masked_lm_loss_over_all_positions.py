"""gpt: the masked-LM loss averages over every position, not only the chosen ones."""

import torch.nn.functional as F

import fmspec.reference.gpt as ref
from fmspec.candidates.mutants import patch

COMPONENT = "gpt"
CAUGHT_BY = ["test_masked_lm_loss_only_on_chosen_positions", "test_masked_lm_loss_with_nothing_chosen_is_zero",
             "test_encoder_debug_run_masked_lm_loss_falls"]


def masked_lm_loss(logits, ids, chosen):
    return F.cross_entropy(logits.flatten(0, 1).float(), ids.flatten()).to(logits.dtype)


gpt = patch(ref, masked_lm_loss=masked_lm_loss)
