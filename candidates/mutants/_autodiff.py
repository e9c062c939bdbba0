"""Mutants of autodiff: the reference with a primitive's derivative, or a tracer class, swapped.

Every operation of a program goes through ``ops.apply``, which hands the new value to the class of the
variable being traced: ``reverse.Var`` (grad, vjp) records it on the tape, ``forward.Dual`` (jvp) pushes
the tangent. A mutant primitive is recorded through a subclass that swaps it in; the entry points are
the reference's, rebound to build their variables from the subclass.
"""

from __future__ import annotations

import types

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch, rebind
from fmspec.reference.autodiff import forward, primitives, reverse


def with_tracers(var: type | None = None, dual: type | None = None) -> types.SimpleNamespace:
    """The reference namespace with reverse mode (grad, vjp) tracing through ``var``, a subclass of
    ``reverse.Var``, and forward mode (jvp) through ``dual``, a subclass of ``forward.Dual``."""
    overrides = {}
    if var is not None:
        trace = rebind(reverse.trace, Var=var)
        overrides.update(grad=rebind(reverse.grad, trace=trace), vjp=rebind(reverse.vjp, trace=trace))
    if dual is not None:
        overrides.update(jvp=rebind(forward.jvp, Dual=dual))
    return patch(ref, **overrides)


def with_primitives(*mutated: primitives.Primitive, modes: tuple[str, ...] = ("reverse", "forward")
                    ) -> types.SimpleNamespace:
    """The reference namespace in which each primitive of ``mutated`` stands in for the reference
    primitive of its name (``primitives.TANH`` for one named "tanh") in the given modes, "reverse" and/or
    "forward"."""
    swap = {getattr(primitives, p.name.upper()): p for p in mutated}

    class Var(reverse.Var):
        @classmethod
        def record(cls, prim, *rest):
            return super().record(swap.get(prim, prim), *rest)

    class Dual(forward.Dual):
        @classmethod
        def record(cls, prim, *rest):
            return super().record(swap.get(prim, prim), *rest)

    return with_tracers(var=Var if "reverse" in modes else None, dual=Dual if "forward" in modes else None)
