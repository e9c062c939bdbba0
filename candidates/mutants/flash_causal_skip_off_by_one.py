"""flash: causal block skipping stops one key early (skips a block that starts on the query block's last row)."""

import inspect
import types


import reference.flash as ref
from candidates.mutants import patch

COMPONENT = "flash"
CAUGHT_BY = ['test_equals_dense_attention', 'test_causal_with_tq_ne_tk_is_top_left']
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('if causal and j0 > i1 - 1:',
     'if causal and j0 >= i1 - 1:'),
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
