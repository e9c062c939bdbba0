"""The reference implementation as a candidate. It must pass 100% of every suite.

Its component namespaces are the modules of the ``fmspec.reference`` package, imported on first use, so a
component added there is part of this candidate without further wiring.
"""

from __future__ import annotations

import importlib

from fmspec import COMPONENTS

CAPABILITIES = {
    "flash": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]},
    "finetune": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "bfloat16"]},
    "gpt": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "bfloat16"]},
    "attention": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]},
    "quant": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "float16", "bfloat16"]},
    "lora": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "bfloat16"]},
    "checkpoint": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "bfloat16"]},
    "vit": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "bfloat16"]},
    "layers": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "bfloat16"]},
}


def __getattr__(name: str):
    if name in COMPONENTS:
        try:
            return importlib.import_module(f"fmspec.reference.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fmspec.reference.{name}":
                raise AttributeError(name) from None
            raise
    raise AttributeError(name)
