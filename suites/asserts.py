"""Assertion helpers shared by every suite (imported ``as ah``).

Each helper hides its own frame from the traceback and says what differed, by how much, for which call:
``out: rel. error 3.1e-02 > allowed 3.8e-06 (float32, n=64) at (0, 2): got 0.5, expected 0.25
[posenc.sinusoidal(5, 8)]``. The bracket is a snippet that reproduces the call.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from fmspec.suites import tolerances as tol


def describe(value: Any) -> str:
    """Short text for an argument: tensors by shape and dtype, the rest by repr."""
    if isinstance(value, torch.Tensor):
        return f"tensor(shape={tuple(value.shape)}, dtype={str(value.dtype).removeprefix('torch.')})"
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"{type(value).__name__}(len={len(value)})"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def snippet(name: str, *args: Any, **kwargs: Any) -> str:
    """``snippet("posenc.sinusoidal", 5, 8)`` -> ``"posenc.sinusoidal(5, 8)"``."""
    shown = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


def _snapshot(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(_snapshot(v) for v in value) if not hasattr(value, "_fields") else value
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    return None


def _unchanged(before: Any, after: Any) -> bool:
    if isinstance(before, torch.Tensor):
        return before.shape == after.shape and torch.equal(before.nan_to_num(0.5), after.detach().nan_to_num(0.5))
    if isinstance(before, (list, tuple)):
        return len(before) == len(after) and all(_unchanged(b, a) for b, a in zip(before, after))
    if isinstance(before, dict):
        return before.keys() == after.keys() and all(_unchanged(before[k], after[k]) for k in before)
    return True


def call(fn: Callable, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a candidate function and check it modified none of its tensor inputs.

    ``name`` is the feature (``"attention.scaled_dot_product"``), used in messages.
    """
    __tracebackhide__ = True
    before_args = [_snapshot(a) for a in args]
    before_kwargs = {k: _snapshot(v) for k, v in kwargs.items()}
    out = fn(*args, **kwargs)
    for i, (b, a) in enumerate(zip(before_args, args)):
        if not _unchanged(b, a):
            raise AssertionError(f"argument {i} ({describe(a)}) was modified in place [{snippet(name, *args, **kwargs)}]")
    for k, b in before_kwargs.items():
        if not _unchanged(b, kwargs[k]):
            raise AssertionError(f"argument {k!r} was modified in place [{snippet(name, *args, **kwargs)}]")
    return out


def assert_tensor(out: Any, shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None, *,
                  name: str = "out", where: str = "") -> None:
    """``out`` is a tensor with the given shape and dtype."""
    __tracebackhide__ = True
    suffix = f" [{where}]" if where else ""
    if not isinstance(out, torch.Tensor):
        raise AssertionError(f"{name}: expected a torch.Tensor, got {type(out).__name__}{suffix}")
    if shape is not None and tuple(out.shape) != tuple(shape):
        raise AssertionError(f"{name}.shape={tuple(out.shape)}, expected {tuple(shape)}{suffix}")
    if dtype is not None and out.dtype != dtype:
        raise AssertionError(f"{name}.dtype={out.dtype}, expected {dtype}{suffix}")


def assert_close(actual: Any, oracle: torch.Tensor, *, dtype: torch.dtype | None = None, n: int = 1,
                 baseline: torch.Tensor | None = None, scale: float = 0.0, name: str = "out",
                 where: str = "") -> None:
    """``actual`` matches the float64 ``oracle`` within :func:`tolerances.allowed`.

    ``dtype`` is the precision the candidate computed in (default: ``actual``'s); ``n`` the reduction
    length behind one element; ``baseline`` a plain same-dtype computation whose error sets the bar;
    ``scale`` the size of the terms the result sums, where they cancel (see :func:`tolerances.rel_error`).
    """
    __tracebackhide__ = True
    assert_tensor(actual, tuple(oracle.shape), name=name, where=where)
    dtype = dtype or actual.dtype
    base_err = tol.rel_error(baseline, oracle, scale) if baseline is not None else None
    limit = tol.allowed(dtype, n, base_err)
    err = tol.rel_error(actual, oracle, scale)
    if err <= limit:
        return
    a = actual.detach().to(torch.float64).cpu()
    o = oracle.detach().to(torch.float64).cpu()
    diff = (a - o).abs().nan_to_num(math.inf)
    idx = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape)) if diff.numel() else ()
    how = f"{str(dtype).removeprefix('torch.')}, n={n}"
    if scale > o.abs().max().item():
        how += f", relative to the terms' scale {scale:.3g}"
    if base_err is not None:
        how += f", baseline error {base_err:.2g}"
    suffix = f" [{where}]" if where else ""
    raise AssertionError(
        f"{name}: rel. error {err:.3g} > allowed {limit:.2g} ({how}); worst at {idx}: "
        f"got {a[idx].item():.6g}, expected {o[idx].item():.6g}{suffix}"
    )


def assert_equal(actual: Any, expected: Any, *, name: str = "out", where: str = "") -> None:
    """Exact equality for discrete outputs (ids, merges, masks, integer codes), with the first difference."""
    __tracebackhide__ = True
    suffix = f" [{where}]" if where else ""
    if isinstance(expected, torch.Tensor):
        assert_tensor(actual, tuple(expected.shape), name=name, where=where)
        if not torch.equal(actual.cpu(), expected.cpu()):
            bad = (actual.cpu() != expected.cpu()).nonzero()
            first = tuple(bad[0].tolist()) if len(bad) else ()
            raise AssertionError(f"{name}: {len(bad)} elements differ; first at {first}: "
                                 f"got {actual[first].item()}, expected {expected[first].item()}{suffix}")
        return
    if actual == expected:
        return
    if isinstance(actual, (list, tuple)) and isinstance(expected, (list, tuple)):
        for i, (a, e) in enumerate(zip(actual, expected)):
            if a != e:
                raise AssertionError(f"{name}[{i}] = {a!r}, expected {e!r} (len {len(actual)} vs {len(expected)}){suffix}")
        raise AssertionError(f"{name}: length {len(actual)}, expected {len(expected)}{suffix}")
    raise AssertionError(f"{name} = {describe(actual)}, expected {describe(expected)}{suffix}")


def assert_nontrivial(oracle: torch.Tensor, *, name: str = "oracle") -> None:
    """Guard for a test's own inputs: the expected output is not constant, so a constant output cannot pass."""
    __tracebackhide__ = True
    flat = oracle.detach().reshape(-1)
    if flat.numel() > 1 and torch.all(flat == flat[0]):
        raise AssertionError(f"{name} is constant: the test's input cannot tell a right answer from a constant one")
