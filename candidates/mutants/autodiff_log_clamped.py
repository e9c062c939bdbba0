"""autodiff: a "safe" log that clamps its argument to 1e-12, finite (about -27.6) outside the domain, in both modes."""

import torch

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch, rebind
from fmspec.reference.autodiff import forward, primitives, reverse

COMPONENT = "autodiff"
CAUGHT_BY = ["test_out_of_domain_gradient_is_not_finite", "test_out_of_domain_jvp_is_not_finite"]

LOG = primitives.elementwise("log", lambda a: torch.log(a.clamp_min(1e-12)), lambda z, a: 1.0 / a.clamp_min(1e-12))

_ops = patch(ref.ops, log=lambda a: ref.ops.apply(LOG, a))
_trace = rebind(reverse.trace, ops=_ops)
autodiff = patch(ref, ops=_ops, grad=rebind(reverse.grad, trace=_trace), vjp=rebind(reverse.vjp, trace=_trace),
                 jvp=rebind(forward.jvp, ops=_ops))
