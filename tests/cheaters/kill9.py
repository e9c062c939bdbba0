"""Kills its own process with SIGKILL, as a segfault or the OOM killer would end it."""

import os
import types


def sinusoidal(num_positions, dim, base=10000.0):
    os.kill(os.getpid(), 9)


posenc = types.SimpleNamespace(sinusoidal=sinusoidal)
