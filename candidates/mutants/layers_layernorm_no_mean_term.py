"""layers: layer-norm backward drops the mean(ĝ) term, as if the mean did not depend on x."""

import fmspec.reference.layers as ref
from fmspec.candidates.mutants import edited

COMPONENT = "layers"
CAUGHT_BY = ["test_layernorm_backward_matches_autograd", "test_layernorm_grad_x_sums_to_zero"]

layers = edited(ref, ("grad_x = rstd * (g_hat - g_hat.mean(-1, keepdim=True) - xhat * (g_hat * xhat).mean(-1, keepdim=True))",
                      "grad_x = rstd * (g_hat - xhat * (g_hat * xhat).mean(-1, keepdim=True))"))
