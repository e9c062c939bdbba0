"""flash: the online softmax never stores the new running max (m = m_new missing): each key block discards the ones before it."""

import fmspec.reference.flash as ref
from fmspec.candidates.mutants import edited

COMPONENT = "flash"
CAUGHT_BY = [
    "test_block_size_invariance",
    "test_causal_with_tq_ne_tk_is_top_left",
    "test_equals_dense_attention",
    "test_gradients_match_dense_autograd",
    "test_large_logits_do_not_overflow",
    "test_lse_is_log_sum_exp",
    "test_worked_example",
]

flash = edited(ref, ('            m = m_new\n',
                     ''))
