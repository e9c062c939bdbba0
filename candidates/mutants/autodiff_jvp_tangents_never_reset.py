"""autodiff: jvp seeds each input's tangent into a slot kept across calls, adding to it (never reset)."""

import fmspec.reference.autodiff as ref
from fmspec.candidates.mutants import patch

COMPONENT = "autodiff"
CAUGHT_BY = ["test_same_jvp_when_called_twice"]

_SLOTS: dict = {}  # input position -> the seeded tangent, kept across calls


def jvp(f, xs, tangents):
    seeded = []
    for i, u in enumerate(tangents):
        old = _SLOTS.get(i)
        same_kind = type(old) is type(u) and getattr(u, "shape", None) == getattr(old, "shape", None)
        _SLOTS[i] = old + u if same_kind else u  # += where = belongs
        seeded.append(_SLOTS[i])
    return ref.jvp(f, xs, seeded)


autodiff = patch(ref, jvp=jvp)
