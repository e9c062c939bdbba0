"""flash: the default scale is 1/D instead of 1/sqrt(D)."""

import inspect
import types


import reference.flash as ref
from candidates.mutants import patch

COMPONENT = "flash"
CAUGHT_BY = ['test_equals_dense_attention', 'test_causal_with_tq_ne_tk_is_top_left']
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('return 1.0 / math.sqrt(q.shape[-1])',
     'return 1.0 / q.shape[-1]'),
]


def _mutate() -> types.ModuleType:
    source = inspect.getsource(ref)
    for old, new in EDITS:
        assert old in source, f"reference/flash.py no longer contains {old!r}"
        source = source.replace(old, new, 1)
    module = types.ModuleType(__name__ + "_flash")
    module.__dict__.update({k: v for k, v in globals().items() if k.startswith("_probabilities")})
    exec(compile(source, ref.__file__, "exec"), module.__dict__)
    return module


flash = patch(_mutate())
