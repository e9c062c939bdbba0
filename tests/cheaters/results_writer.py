"""Rewrites the results file as all-passed (at once, at every call, and from an atexit hook), and appends
to a suite file. The targets are named by FMSPEC_CHEAT_TARGETS (the test's copies), as a student would
find them by looking around."""

import atexit
import json
import os
import types

import torch

TARGETS = os.environ.get("FMSPEC_CHEAT_TARGETS", "").split(os.pathsep)


def _tamper():
    for path in filter(None, TARGETS):
        try:
            if path.endswith(".json"):
                with open(path, "w") as fh:
                    json.dump({"status": "complete", "tampered": True}, fh)
            else:
                with open(path, "a") as fh:
                    fh.write("\n# tampered\n")
        except OSError:
            pass


atexit.register(_tamper)
_tamper()


def sinusoidal(num_positions, dim, base=10000.0):
    _tamper()
    return torch.zeros(num_positions, dim, dtype=torch.float64)


posenc = types.SimpleNamespace(sinusoidal=sinusoidal)
