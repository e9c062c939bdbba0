"""Exits the process in the middle of a call."""

import os
import types


def sinusoidal(num_positions, dim, base=10000.0):
    os._exit(3)


posenc = types.SimpleNamespace(sinusoidal=sinusoidal)
