"""accounting: transformer_params forgets the 2dV embedding and unembedding parameters (12 d^2 L only)."""

import fmspec.reference.accounting as ref
from fmspec.candidates.mutants import edited

COMPONENT = "accounting"
CAUGHT_BY = ["test_transformer_params_formula", "test_params_equal_model_parameter_count"]

accounting = edited(ref, ("return 12 * d * d * L + 2 * d * V", "return 12 * d * d * L  # + 2 d V missing"))
