"""accounting: mfu counts 2ND FLOPs (the forward pass only) instead of 6ND."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_llama3_mfu_is_32_percent", "test_mfu_formula", "test_llama3_achieved_flops_give_160_flops_per_byte"]


def mfu(n_params, tokens, n_gpus, peak_flops, seconds):
    return ref.mfu(n_params, tokens, n_gpus, peak_flops, seconds) / 3  # bug: 2 N D / (G P t)


accounting = patch(ref, mfu=mfu)
