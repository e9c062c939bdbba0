"""Mutants: the reference with one realistic, subtle bug each. The suite must catch every one.

A mutant is a file ``<component>_<bug>.py`` in this folder, loaded as a path candidate::

    \"\"\"posenc: base 1000 instead of 10000.\"\"\"          # first line: the bug, as the docs list it
    import fmspec.reference.posenc as ref
    from fmspec.candidates.mutants import patch

    COMPONENT = "posenc"                              # the suite that must catch it
    CAUGHT_BY = ["test_matches_closed_form"]          # tests that must fail (the evidence)
    CAUGHT_BY_GPU = []                                # optional: tests that fail only where CUDA runs them

    def sinusoidal(num_positions, dim, base=1000.0): ...

    posenc = patch(ref, sinusoidal=sinusoidal)

A mutant whose bug is a line of the reference changed is that edit and nothing else, so that it cannot
silently become the reference when the reference changes (the edit raises once its text is gone)::

    flash = edited(ref, ("l = alpha * l + p.sum(-1)", "l = l + p.sum(-1)"))

The helpers, each for one way of planting a bug:

- :func:`patch`: the reference's namespace with functions or classes replaced (a wrapper, a subclass);
- :func:`edited`: the namespace of a copy of the reference with lines of its source changed
  (:func:`edit_source` gives the copy itself, :func:`edited_text` its text);
- :func:`rebind`: a reference function that finds another object under one of its global names (a helper
  of another module, which an edited copy would import again unchanged);
- ``_autodiff``: the autodiff reference with a primitive's derivative or a tracer class swapped;
- ``_triton``: the Triton kernels rebuilt from edited source.

``tests/test_mutants.py`` runs each component's suite on its mutants and checks both; ``python -m
fmspec.candidates.mutants`` prints the table in docs/mutants.md.
"""

from __future__ import annotations

import ast
import inspect
import sys
import types
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


def patch(module: types.ModuleType, **overrides) -> types.SimpleNamespace:
    """A namespace with the module's public attributes, some replaced; the module itself is untouched.

    Functions of the module that call a replaced one internally still call the original: replace those
    too where the bug must reach them.
    """
    public = {k: v for k, v in vars(module).items() if not k.startswith("_")}
    unknown = set(overrides) - set(public)
    if unknown:
        raise AttributeError(f"{module.__name__} has no {', '.join(sorted(unknown))} to patch")
    return types.SimpleNamespace(**{**public, **overrides})


def edited_text(module: types.ModuleType, edits: list[tuple[str, str]]) -> str:
    """The source of ``module`` with each ``(old, new)`` edit applied once (the first occurrence).

    An edit whose ``old`` text is no longer in the source raises, so a mutant cannot silently become the
    reference when the reference changes.
    """
    source = inspect.getsource(module)
    for old, new in edits:
        if old not in source:
            raise ValueError(f"{module.__name__} no longer contains {old!r}: update the mutant")
        source = source.replace(old, new, 1)
    return source


def edit_source(module: types.ModuleType, edits: list[tuple[str, str]], **extra) -> types.ModuleType:
    """A fresh copy of ``module`` built from :func:`edited_text`; ``extra`` names are defined in it before its
    code runs. The module itself is untouched.

    While its code runs, the copy stands in ``sys.modules`` under its own name (``dataclasses`` looks a
    class's module up there).
    """
    source = edited_text(module, edits)
    copy = types.ModuleType(module.__name__ + "_mutant")
    copy.__dict__.update(extra)
    before = sys.modules.get(copy.__name__)
    sys.modules[copy.__name__] = copy
    try:
        exec(compile(source, module.__file__, "exec"), copy.__dict__)
    finally:
        if before is None:
            del sys.modules[copy.__name__]
        else:
            sys.modules[copy.__name__] = before
    return copy


def edited(module: types.ModuleType, *edits: tuple[str, str], **extra) -> types.SimpleNamespace:
    """The public namespace of :func:`edit_source`'s copy of ``module`` with ``edits``, each ``(old, new)``."""
    return patch(edit_source(module, list(edits), **extra))


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:  # nested functions, lambdas and comprehensions
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def rebind(fn: types.FunctionType, **names) -> types.FunctionType:
    """A copy of ``fn`` that finds ``names`` in place of the module globals of the same names; ``fn`` is untouched.

    ``rebind(dense.scaled_dot_product, masked_softmax=my_softmax)`` runs the reference's code with the
    mutant's softmax. A name that ``fn`` does not use raises, so the mutant cannot silently become the
    reference when the reference changes.
    """
    unused = set(names) - _global_names(fn.__code__)
    if unused:
        raise ValueError(f"{fn.__module__}.{fn.__qualname__} uses no {', '.join(sorted(unused))}: update the mutant")
    copy = types.FunctionType(fn.__code__, {**fn.__globals__, **names}, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__kwdefaults__ = fn.__kwdefaults__
    return copy


@dataclass(frozen=True)
class Mutant:
    path: Path
    component: str
    bug: str
    caught_by: tuple[str, ...]
    caught_by_gpu: tuple[str, ...] = ()

    def expected(self, cuda: bool) -> tuple[str, ...]:
        """The tests that must fail on this mutant, on a machine with (``cuda``) or without a GPU."""
        return self.caught_by + (self.caught_by_gpu if cuda else ())

    @property
    def name(self) -> str:
        return self.path.stem


def discover() -> list[Mutant]:
    """Every mutant in this folder, read without importing it."""
    out = []
    for path in sorted(HERE.glob("*.py")):
        if path.name.startswith("_"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        consts = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id in ("COMPONENT", "CAUGHT_BY", "CAUGHT_BY_GPU"):
                    consts[node.targets[0].id] = ast.literal_eval(node.value)
        doc = (ast.get_docstring(tree) or "").strip().splitlines()
        if "COMPONENT" not in consts or not doc:
            raise ValueError(f"{path.name}: a mutant needs a docstring and COMPONENT (see candidates/mutants/__init__.py)")
        out.append(Mutant(path, consts["COMPONENT"], doc[0], tuple(consts.get("CAUGHT_BY", ())),
                          tuple(consts.get("CAUGHT_BY_GPU", ()))))
    return out


# Suite tests no mutant here can be caught by, with why (every other suite test must be in some CAUGHT_BY).
UNCAUGHT = {
    "test_patch_embed_agrees_with_timm": "its oracle is timm's PatchEmbed; timm cannot be installed beside the "
                                         "CPU build of torch, so the test skips wherever the mutants run",
}


def suite_tests() -> list[tuple[str, str]]:
    """Every test function of the suites as (component, name): ``suites/test_<component>[_<part>].py``."""
    from fmspec import COMPONENTS
    from fmspec import suites

    out = []
    for path in sorted(Path(suites.__file__).parent.glob("test_*.py")):
        component = next(c for c in sorted(COMPONENTS, key=len, reverse=True)
                         if path.stem == f"test_{c}" or path.stem.startswith(f"test_{c}_"))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        out += [(component, node.name) for node in tree.body
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")]
    return out


def uncaught() -> list[tuple[str, str]]:
    """The suite tests that no mutant lists in CAUGHT_BY or CAUGHT_BY_GPU."""
    listed = {(m.component, t) for m in discover() for t in m.caught_by + m.caught_by_gpu}
    return [test for test in suite_tests() if test not in listed]


def markdown() -> str:
    found, tests, missed = discover(), suite_tests(), uncaught()
    lines = [
        "# Mutants and what catches them",
        "",
        "Generated by `python -m fmspec.candidates.mutants > docs/mutants.md`; `tests/test_mutants.py` checks that every",
        "mutant fails its component's suite, in every test listed here, and that this file is current. Tests marked",
        "(GPU) run only where CUDA is available: there `tests/test_mutants.py` checks them too (an H200 run:",
        "[benchmarks/mutants-h200.md](../benchmarks/mutants-h200.md)); a mutant that only they catch is skipped",
        "on a machine without a GPU.",
        "",
        f"{len(found)} mutants; {len(tests)} suite test functions, {len(tests) - len(missed)} of them listed as catching at "
        f"least one mutant (`tests/test_mutants.py` checks that every test is, except these):",
        "",
        *[f"- `{c}` `{t}`: {UNCAUGHT.get(t, 'no mutant yet')}" for c, t in missed],
        "",
        "| component | mutant | bug | caught by |",
        "| --- | --- | --- | --- |",
    ]
    for m in found:
        caught = ", ".join([f"`{t}`" for t in m.caught_by] + [f"`{t}` (GPU)" for t in m.caught_by_gpu])
        lines.append(f"| {m.component} | `{m.name}` | {m.bug} | {caught} |")
    return "\n".join(lines) + "\n"
