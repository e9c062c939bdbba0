"""The contract cannot drift: the template (which documents it), the reference and torch_native agree on
every contract function's signature.

The template's public functions and classes are the contract (docs/contract.md points to them). Each must
exist in the reference with the same parameters (names, order, kinds, defaults; further ones only if
optional), and each that torch_native implements must match too; a class is compared by its constructor and
its public methods.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

from fmspec import COMPONENTS


def contract(module) -> dict[str, object]:
    """The public functions and classes a module defines itself (not what it imports)."""
    return {name: obj for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == module.__name__}


def parameters(fn) -> list[inspect.Parameter]:
    params = list(inspect.signature(fn).parameters.values())
    return params[1:] if params and params[0].name in ("self", "cls") else params


def compatible(ours, theirs) -> bool:
    """``theirs`` accepts every call the contract's ``ours`` documents: the same parameters in the same order
    (names, kinds, defaults), and any further ones optional (a keyword with a default, ``*args``, ``**kw``)."""
    mine = parameters(ours)
    try:
        other = parameters(theirs)
    except ValueError:  # a C builtin (torch_native's autodiff.ops.add is torch.add): no signature to read
        return True
    if len(other) < len(mine):
        return False
    for a, b in zip(mine, other):
        if (a.name, a.kind, a.default) != (b.name, b.kind, b.default):
            return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in other[len(mine):])


def differences(name: str, ours, theirs, who: str) -> list[str]:
    """How ``theirs`` departs from the template's ``ours``: a function by its parameters; a class by its
    constructor (where the template defines one) and its public methods; a class may be implemented as a
    factory function (torch_native's DistributedDataParallel), compared with the constructor."""
    if not inspect.isclass(ours):
        return [] if compatible(ours, theirs) else [f"{name}: template {inspect.signature(ours)} but {who} "
                                                    f"{inspect.signature(theirs)}"]
    out = []
    if "__init__" in vars(ours):
        init = theirs.__init__ if inspect.isclass(theirs) else theirs
        if not compatible(ours.__init__, init):
            out.append(f"{name}(): template {inspect.signature(ours.__init__)} but {who} {inspect.signature(init)}")
    if not inspect.isclass(theirs) and "__init__" in vars(ours):
        return out  # a factory: the object it returns is the implementation's own class
    for member in vars(ours):
        ours_fn = getattr(ours, member)
        if member.startswith("_") or not inspect.isfunction(ours_fn):
            continue
        theirs_fn = getattr(theirs, member, None)
        if theirs_fn is None:
            out.append(f"{name}.{member}: missing from {who}")
        elif not compatible(ours_fn, theirs_fn):
            out.append(f"{name}.{member}: template {inspect.signature(ours_fn)} but {who} {inspect.signature(theirs_fn)}")
    return out


@pytest.mark.parametrize("component", COMPONENTS)
def test_reference_has_every_template_function_with_its_signature(component):
    template = importlib.import_module(f"fmspec.candidates.template.{component}")
    reference = importlib.import_module(f"fmspec.reference.{component}")
    problems = []
    for name, obj in contract(template).items():
        if not hasattr(reference, name):
            problems.append(f"{name}: in the template, missing from the reference")
            continue
        problems += differences(name, obj, getattr(reference, name), "the reference")
    assert not problems, f"{component}:\n" + "\n".join(problems)


@pytest.mark.parametrize("component", COMPONENTS)
def test_torch_native_matches_the_template_where_it_implements(component):
    try:
        native = importlib.import_module(f"fmspec.candidates.torch_native.{component}")
    except ModuleNotFoundError:
        pytest.skip(f"torch_native has no {component}")
    template = importlib.import_module(f"fmspec.candidates.template.{component}")
    problems = []
    for name, obj in contract(template).items():
        if hasattr(native, name):
            problems += differences(name, obj, getattr(native, name), "torch_native")
    assert not problems, f"{component}:\n" + "\n".join(problems)


def test_differences_are_found():
    """The comparison itself: a renamed, reordered, re-defaulted or added required parameter is a difference;
    an added optional one is not."""
    def ours(params, max_norm, scale=1.0): ...
    def renamed(parameters, max_norm, scale=1.0): ...
    def reordered(max_norm, params, scale=1.0): ...
    def redefaulted(params, max_norm, scale=2.0): ...
    def required_extra(params, max_norm, scale=1.0, norm=None, *, foreach): ...
    def optional_extra(params, max_norm, scale=1.0, norm_type=2.0, *args, foreach=None, **kw): ...
    for drifted in (renamed, reordered, redefaulted, required_extra):
        assert differences("f", ours, drifted, "x"), drifted.__name__
    assert not differences("f", ours, optional_extra, "x")

    class Layer:
        def __init__(self, base, r): ...
        def merge(self): ...

    class NoMerge:
        def __init__(self, base, r): ...

    def factory(base, r, dropout=0.0): ...
    assert differences("Layer", Layer, NoMerge, "x") == ["Layer.merge: missing from x"]
    assert not differences("Layer", Layer, factory, "x")
