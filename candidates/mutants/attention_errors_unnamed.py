"""attention: every argument error says "invalid arguments" (ValueError or TypeError as before) without naming the argument."""

import functools

import fmspec.reference.attention as ref
from fmspec.candidates.mutants import patch


def unnamed(fn):
    """``fn`` with the message of each ValueError or TypeError it raises replaced by one that names nothing."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (ValueError, TypeError) as exc:
            raise type(exc)("invalid arguments") from None
    return wrapper


COMPONENT = "attention"
CAUGHT_BY = ["test_bad_arguments_raise_value_error", "test_multi_head_bad_arguments_raise", "test_mask_bad_arguments_raise",
             "test_sparse_bad_arguments_raise", "test_kernel_and_lowrank_bad_arguments_raise"]

attention = patch(ref, **{name: unnamed(getattr(ref, name)) for name in (
    "scaled_dot_product", "multi_head", "sliding_window_mask", "longformer_mask", "bigbird_mask", "strided_mask",
    "fixed_mask", "sparse", "linear", "performer", "linformer")})
