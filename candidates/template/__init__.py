"""A starting point for your own candidate: every contract function, with its docs, raising NotImplementedError.

Copy this folder, fill in the functions you implement, and run::

    pytest suites --candidate path/to/your/copy

A function that still raises ``NotImplementedError`` counts as *missing*, not failed; delete what you
will never implement (also missing). See docs/contract.md for every signature and convention.
"""


from . import (  # noqa: F401  one module per component, relative so that a copy uses its own files
    accounting,
    attention,
    autodiff,
    bpe,
    checkpoint,
    collectives,
    finetune,
    flash,
    gpt,
    layers,
    lora,
    posenc,
    quant,
    vit,
)

CAPABILITIES: dict = {}  # e.g. {"flash": {"devices": ["cuda"], "dtypes": ["bfloat16", "float16"]}}
