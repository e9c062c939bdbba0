"""A candidate built from what users would otherwise use: torch autograd, torch SDPA,
torch.utils.checkpoint, HF tokenizers, peft, timm, torch.distributed's collectives, DDP and
ZeroRedundancyOptimizer. It must pass every suite it implements.

One module per component (``candidates/torch_native/<component>.py``), imported on first use; a
component without a module is missing. Where a library's semantics differ from the contract, the
module's docstring says so.
"""

from __future__ import annotations

import importlib

from fmspec import COMPONENTS

CAPABILITIES: dict = {
    "gpt": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "bfloat16"]},
    "finetune": {"devices": ["cpu", "cuda"], "dtypes": ["float32", "float64", "bfloat16"]},
    "collectives": {"p2p": False},  # its collectives bypass comm.send: the byte-counting tests do not apply
}


def __getattr__(name: str):
    if name in COMPONENTS:
        try:
            return importlib.import_module(f"fmspec.candidates.torch_native.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fmspec.candidates.torch_native.{name}":
                raise AttributeError(name) from None
            raise
    raise AttributeError(name)
