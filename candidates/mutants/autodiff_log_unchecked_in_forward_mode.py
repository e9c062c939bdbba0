"""autodiff: forward mode evaluates log without its domain check (nan, -inf) while reverse mode raises."""

import torch

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch, rebind
from fmspec.reference.autodiff import forward, primitives

COMPONENT = "autodiff"
CAUGHT_BY = ["test_out_of_domain_is_consistent_between_modes"]

LOG = primitives.elementwise("log", torch.log, lambda z, a: 1.0 / a)


def _log(a):
    if isinstance(a, forward.Dual):
        z = torch.log(a.value)  # nan below 0, -inf at 0
        return forward.Dual(z, LOG.jvp((a.tangent,), z, a.value))
    return ref.ops.log(a)


_ops = patch(ref.ops, log=_log)
autodiff = patch(ref, ops=_ops, jvp=rebind(forward.jvp, ops=_ops))
