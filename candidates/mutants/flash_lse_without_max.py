"""flash: the log-sum-exp is log(l), without adding back the running max."""

import inspect
import types


import reference.flash as ref
from candidates.mutants import patch

COMPONENT = "flash"
CAUGHT_BY = ['test_lse_is_log_sum_exp', 'test_gradients_match_dense_autograd', 'test_large_logits_do_not_overflow']
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('lse[:, :, i0:i1] = m + torch.log(l)',
     'lse[:, :, i0:i1] = torch.log(l)'),
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
