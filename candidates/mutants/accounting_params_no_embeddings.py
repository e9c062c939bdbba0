"""accounting: transformer_params forgets the 2dV embedding and unembedding parameters (12 d^2 L only)."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import patch

COMPONENT = "accounting"
CAUGHT_BY = ["test_transformer_params_formula", "test_params_equal_model_parameter_count"]


def transformer_params(d, L, V):
    ref.transformer_params(d, L, V)  # argument checks
    return 12 * d * d * L  # bug: + 2 d V missing


accounting = patch(ref, transformer_params=transformer_params)
