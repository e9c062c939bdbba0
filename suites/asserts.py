"""Assertion helpers shared by every suite (imported ``as ah``).

Each helper hides its own frame from the traceback and says what differed, by how much, for which call:
``out: rel. error 3.1e-02 > allowed 3.8e-06 (float32, n=64) at (0, 2): got 0.5, expected 0.25
[posenc.sinusoidal(5, 8)]``. The bracket is a snippet that reproduces the call.

- :func:`call` / :func:`checked_call`: call a candidate function and hold it to the contract's promises
  for every call: no argument modified in place; outputs new tensors on the arguments' device, in their
  floating dtype (:func:`check_outputs`). The loader applies :func:`checked_call` to every function a test
  reaches through the ``candidate`` fixture;
- :func:`assert_tensor`: a tensor of the expected shape and dtype;
- :func:`assert_close`: error against a float64 oracle within :func:`tolerances.allowed`, relative to the
  oracle or (``scale=``) to the size of the terms a sum cancels; :func:`flat` makes one vector of the
  floats, tensors and sequences a candidate may return, for it;
- :func:`assert_equal`: exact equality for discrete outputs;
- :func:`assert_within`: elementwise ``|error| <= bound`` where a test derives its own bound;
- :func:`assert_rounded`: integer codes equal round-to-nearest of float64 values (either neighbour at a tie);
- :func:`assert_nontrivial`: a guard on a test's own inputs.

A suite's own check functions (``check_grads`` in the layers suite) only choose the oracle, ``n`` and
``scale`` and call these; none computes an error or a tolerance of its own.
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


def _versions(value: Any) -> list[int]:
    """The version counters of the tensors in ``value``: torch bumps a tensor's counter on every in-place
    operation (``Tensor._version``, the counter autograd's saved-tensor checks read; no public accessor)."""
    if isinstance(value, torch.Tensor):
        return [value._version]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _versions(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _versions(v)]
    return []


def call(fn: Callable, name: str, *args: Any, **kwargs: Any) -> Any:
    """Call a candidate function through :func:`checked_call` (the contract's checks of every call).

    ``name`` is the feature (``"attention.scaled_dot_product"``), used in messages. A function reached
    through the ``candidate`` fixture (``candidate.posenc.sinusoidal``) is already checked on every call;
    this helper then only names the call.
    """
    __tracebackhide__ = True
    if getattr(fn, "__fmspec_checked__", False):
        return fn(*args, **kwargs)
    return checked_call(fn, name, args, kwargs)


def checked_call(fn: Callable, name: str, args: tuple, kwargs: dict) -> Any:
    """Call ``fn(*args, **kwargs)`` and hold the result to the contract's promises for every function:

    - no tensor argument modified in place: neither its values (compared with a snapshot) nor, even if it
      was put back, its version counter;
    - the outputs are new tensors on the arguments' device, and floating outputs have the floating
      arguments' dtype (:func:`check_outputs`).

    The loader applies it to every function a test reaches through the ``candidate`` fixture.
    """
    __tracebackhide__ = True
    before_args = [_snapshot(a) for a in args]
    before_kwargs = {k: _snapshot(v) for k, v in kwargs.items()}
    versions = [_versions(a) for a in args], {k: _versions(v) for k, v in kwargs.items()}
    out = fn(*args, **kwargs)
    for i, (b, a) in enumerate(zip(before_args, args)):
        if not _unchanged(b, a):
            raise AssertionError(f"argument {i} ({describe(a)}) was modified in place [{snippet(name, *args, **kwargs)}]")
    for k, b in before_kwargs.items():
        if not _unchanged(b, kwargs[k]):
            raise AssertionError(f"argument {k!r} was modified in place [{snippet(name, *args, **kwargs)}]")
    for i, a in enumerate(args):
        if _versions(a) != versions[0][i]:
            raise AssertionError(f"argument {i} ({describe(a)}) was modified in place (and perhaps restored: its "
                                 f"version counter moved) [{snippet(name, *args, **kwargs)}]")
    for k, v in kwargs.items():
        if _versions(v) != versions[1][k]:
            raise AssertionError(f"argument {k!r} was modified in place (and perhaps restored: its version "
                                 f"counter moved) [{snippet(name, *args, **kwargs)}]")
    check_outputs(out, name, args, kwargs)
    return out


# Outputs whose dtype the contract derives otherwise from the arguments' floating dtype
# (feature -> {output: rule}). Every other floating output has the arguments' dtype.
OWN_DTYPE: dict[str, dict[str, Callable[[torch.dtype], torch.dtype]]] = {
    # return_lse=True: the log-sum-exp is kept in float32 at least (float64 for float64 inputs)
    "flash.flash_attention": {"[1]": lambda d: torch.promote_types(d, torch.float32)},
}

# Features whose outputs may share memory with an argument (feature or component -> why).
MAY_SHARE = {
    "autodiff": "a reverse-mode engine passes a cotangent through a reshape or an identity unchanged, as "
                "torch.autograd.grad does: the gradient is then a view of the cotangent",
    "vit.patchify": "a pure rearrangement: like torch.reshape, a view where the layout allows one",
    "vit.unpatchify": "a pure rearrangement: like torch.reshape, a view where the layout allows one",
}


def _tensors(value: Any, path: str = "") -> list[tuple[str, torch.Tensor]]:
    """The tensors in ``value`` (a tensor, or tuples, lists and dicts of them) with where each sits."""
    if isinstance(value, torch.Tensor):
        return [(path, value)]
    if isinstance(value, (list, tuple)):
        return [t for i, v in enumerate(value) for t in _tensors(v, f"{path}[{i}]")]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _tensors(v, f"{path}[{k!r}]")]
    return []


def check_outputs(out: Any, name: str, args: tuple, kwargs: dict) -> None:
    """The outputs of one call are new tensors on the arguments' device, floating ones in the floating
    arguments' dtype (where the arguments agree on one device and one floating dtype; :data:`OWN_DTYPE`
    lists the outputs whose dtype the contract fixes otherwise).

    ``attention(q, k, v)`` with float32 ``q, k, v`` returning float64, or returning ``v.expand(...)``
    (a view sharing ``v``'s memory), fails here.
    """
    __tracebackhide__ = True
    inputs = [(f"{i}{p}", t) for i, a in enumerate(args) for p, t in _tensors(a)]
    inputs += [(f"{k!r}{p}", t) for k, v in kwargs.items() for p, t in _tensors(v)]
    outputs = _tensors(out)
    if not inputs or not outputs:
        return
    devices = {t.device for _, t in inputs}
    floating = {t.dtype for _, t in inputs if t.is_floating_point()}
    where = snippet(name, *args, **kwargs)
    storages = {t.untyped_storage().data_ptr(): p for p, t in inputs if t.untyped_storage().nbytes() > 0}
    for path, t in outputs:
        label = f"out{path}"
        if len(devices) == 1 and t.device not in devices:
            raise AssertionError(f"{label}.device={t.device}, expected {next(iter(devices))} (the arguments' device) [{where}]")
        dtype = next(iter(floating)) if len(floating) == 1 else None
        if dtype is not None and path in OWN_DTYPE.get(name, {}):
            dtype = OWN_DTYPE[name][path](dtype)
        if dtype is not None and t.is_floating_point() and t.dtype != dtype:
            why = "the contract's" if path in OWN_DTYPE.get(name, {}) else "the arguments'"
            raise AssertionError(f"{label}.dtype={t.dtype}, expected {dtype} ({why} dtype) [{where}]")
        ptr = t.untyped_storage().data_ptr() if t.untyped_storage().nbytes() > 0 else None
        if ptr in storages and name not in MAY_SHARE and name.split(".")[0] not in MAY_SHARE:
            raise AssertionError(f"{label} shares memory with argument {storages[ptr]} (a view of it, or the "
                                 f"argument itself): outputs must be new tensors [{where}]")


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
                 baseline: torch.Tensor | None = None, scale: float = 0.0, condition: float = 1.0,
                 name: str = "out", where: str = "") -> None:
    """``actual`` matches the float64 ``oracle`` within :func:`tolerances.allowed`.

    ``dtype`` is the precision the candidate computed in (default: ``actual``'s); ``n`` the reduction
    length behind one element; ``baseline`` a plain same-dtype computation whose error sets the bar
    (measured the same way, ``scale`` included).

    ``scale`` is the size of the terms the result sums, where they cancel: errors are then relative to
    max(scale, max|oracle|) (see :func:`tolerances.rel_error`). x/(5x) has gradient 0, formed as
    1/(5x) - 5x/(5x)²; a correct result may differ from the oracle by a few roundings of the terms, which
    is huge relative to the result itself but not relative to the terms.

    ``condition`` (>= 1) multiplies the allowed error where the computation's inputs carry known absolute
    errors of their own (an autodiff program whose intermediate values reach 100 carries 100·eps into
    every later step).
    """
    __tracebackhide__ = True
    assert_tensor(actual, tuple(oracle.shape), name=name, where=where)
    dtype = dtype or actual.dtype
    base_err = tol.rel_error(baseline, oracle, scale) if baseline is not None else None
    limit = tol.allowed(dtype, n, base_err) * max(condition, 1.0)
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
    if condition > 1.0:
        how += f", condition {condition:.3g}"
    if base_err is not None:
        how += f", baseline error {base_err:.2g}"
    suffix = f" [{where}]" if where else ""
    got, expected = _distinct(a[idx].item(), o[idx].item())
    raise AssertionError(
        f"{name}: rel. error {err:.3g} > allowed {limit:.2g} ({how}); worst at {idx}: "
        f"got {got}, expected {expected}{suffix}"
    )


def _distinct(got: float, expected: float) -> tuple[str, str]:
    """The two numbers with 6 significant digits, or as many more as it takes to tell them apart."""
    for digits in (6, 9, 12, 17):
        a, b = f"{got:.{digits}g}", f"{expected:.{digits}g}"
        if a != b:
            break
    return a, b


def flat(values: Any, *, name: str = "out", where: str = "") -> torch.Tensor:
    """A number, a tensor, or a list or tuple of them as one float64 vector; anything else fails the test.

    ``flat([1.0, torch.tensor([[2.0, 3.0]])])`` -> ``tensor([1., 2., 3.], dtype=torch.float64)``. For
    results whose form the contract leaves open (a float or a 0-d tensor; a tuple of gradients).
    """
    __tracebackhide__ = True
    parts = values if isinstance(values, (list, tuple)) else [values]
    out = []
    for i, v in enumerate(parts):
        if isinstance(v, bool) or not isinstance(v, (int, float, torch.Tensor)):
            suffix = f" [{where}]" if where else ""
            raise AssertionError(f"{name}[{i}] is {type(v).__name__}, expected a number or a tensor{suffix}")
        v = v.detach() if isinstance(v, torch.Tensor) else torch.tensor(float(v), dtype=torch.float64)
        out.append(v.to(torch.float64).reshape(-1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


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


def assert_same_result(actual: Any, expected: Any, *, name: str = "out", where: str = "") -> None:
    """Two runs of the same call on the same inputs give the same result: the same structure, equal discrete
    values, floating tensors and floats within ``tol.rerun`` of their dtype relative to the expected's
    scale. Objects that are neither (a handle to one of the candidate's objects) are not compared."""
    __tracebackhide__ = True
    suffix = f" [{where}]" if where else ""
    if isinstance(expected, torch.Tensor):
        assert_tensor(actual, tuple(expected.shape), expected.dtype, name=name, where=where)
        if not expected.is_floating_point():
            assert_equal(actual, expected, name=name, where=where)
            return
        err, allowed = tol.rel_error(actual, expected), tol.rerun(expected.dtype)
        if not err <= allowed:
            raise AssertionError(f"{name}: relative error {err:.3g} from the checked run, allowed {allowed:.3g}{suffix}")
        return
    if isinstance(expected, float) and isinstance(actual, float):
        if not abs(actual - expected) <= tol.rerun(torch.float64) * abs(expected) or math.isnan(actual) != math.isnan(expected):
            raise AssertionError(f"{name} = {actual!r}, the checked run gave {expected!r}{suffix}")
        return
    if type(expected) in (tuple, list) and type(actual) is type(expected):
        if len(actual) != len(expected):
            raise AssertionError(f"{name}: length {len(actual)}, the checked run's {len(expected)}{suffix}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same_result(a, e, name=f"{name}[{i}]", where=where)
        return
    if type(expected) is dict and type(actual) is dict:
        if set(actual) != set(expected):
            raise AssertionError(f"{name}: keys {sorted(map(str, actual))}, the checked run's "
                                 f"{sorted(map(str, expected))}{suffix}")
        for k in expected:
            assert_same_result(actual[k], expected[k], name=f"{name}[{k!r}]", where=where)
        return
    if expected is None or isinstance(expected, (bool, int, str, bytes)):
        if actual != expected or type(actual) is not type(expected):
            raise AssertionError(f"{name} = {describe(actual)}, the checked run gave {describe(expected)}{suffix}")


def assert_within(err: torch.Tensor, bound: torch.Tensor, *, name: str = "out", where: str = "") -> None:
    """Elementwise ``err <= bound`` (NaN fails), for a test that derives a bound per element (a quantization
    step, an interval); names how many elements exceed it and the first."""
    __tracebackhide__ = True
    bad = ~(err <= bound)
    if bool(bad.any()):
        i = tuple(int(j) for j in bad.nonzero()[0])
        raise AssertionError(f"{name}: {int(bad.sum())} elements beyond the bound; first at {i}: "
                             f"|error| = {float(err[i]):.6g} > {float(bound[i]):.6g} [{where}]")


def assert_rounded(q: torch.Tensor, v: torch.Tensor, dtype: torch.dtype, *, lo: int = -127, hi: int = 127,
                   name: str = "q", where: str = "") -> None:
    """Integer codes ``q`` equal round(``v``) clamped to [lo, hi], ``v`` the float64 values before rounding;
    within ``dtype``'s rounding of a .5 tie either neighbour is right (the candidate computed ``v`` in
    ``dtype``, and its v may fall on the other side of the tie)."""
    __tracebackhide__ = True
    slack = tol.rounding_floor(dtype) * max(1.0, float(v.abs().max()))
    near_tie = ((v - v.floor()) - 0.5).abs() <= slack
    qd = q.to(torch.float64)
    ok = (qd == torch.round(v).clamp(lo, hi)) | (near_tie & ((qd - v).abs() <= 0.5 + slack))
    if not bool(ok.all()):
        i = tuple(int(j) for j in (~ok).nonzero()[0])
        raise AssertionError(f"{name}: {int((~ok).sum())} codes differ from round(value); first at {i}: "
                             f"got {int(q[i])}, value {float(v[i]):.6g} [{where}]")


def assert_nontrivial(oracle: torch.Tensor, *, name: str = "oracle") -> None:
    """Guard for a test's own inputs: the expected output is not constant, so a constant output cannot pass."""
    __tracebackhide__ = True
    flat = oracle.detach().reshape(-1)
    if flat.numel() > 1 and torch.all(flat == flat[0]):
        raise AssertionError(f"{name} is constant: the test's input cannot tell a right answer from a constant one")
