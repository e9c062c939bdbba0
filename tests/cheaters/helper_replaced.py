"""Replaces the suite's helper modules (assertions, tolerances, strategies, oracles) at import."""

import sys
import types

import torch

for name in ("fmspec.suites.asserts", "fmspec.suites.tolerances", "fmspec.suites._attention_helpers",
             "fmspec.suites._bpe_helpers"):
    fake = types.ModuleType(name)
    fake.__getattr__ = lambda attr: (lambda *a, **k: None)
    sys.modules[name] = fake


def sinusoidal(num_positions, dim, base=10000.0):
    return torch.zeros(num_positions, dim, dtype=torch.float64)


posenc = types.SimpleNamespace(sinusoidal=sinusoidal)
