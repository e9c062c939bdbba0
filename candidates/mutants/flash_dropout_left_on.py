"""flash: attention dropout (p = 0.1, from a training config) is applied to P: the output depends on the global random state."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = [
    "test_block_size_invariance",
    "test_causal_with_tq_ne_tk_is_top_left",
    "test_equals_dense_attention",
    "test_gradients_match_dense_autograd",
    "test_large_logits_do_not_overflow",
    "test_non_contiguous_inputs_work",
    "test_same_answer_when_called_twice",
    "test_worked_example",
]
DROPOUT_P = 0.1

flash = edited(ref, ('acc = alpha[..., None] * acc + p @ v[:, :, j0:j1].to(acc_dtype)',
                     'acc = alpha[..., None] * acc + torch.nn.functional.dropout(p, DROPOUT_P) @ v[:, :, j0:j1].to(acc_dtype)'),
                    DROPOUT_P=DROPOUT_P)
