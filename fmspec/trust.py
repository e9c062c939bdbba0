"""Keeping untrusted candidates honest: what the plugin checks around every candidate test.

- **Tampering.** Before any candidate is imported, the plugin records the identity of every public
  attribute of the modules a cheat would patch (torch and its functional API, ``torch.Tensor``'s methods,
  ``math``, hypothesis, every suite helper module: tolerances, assertions, strategies, shared oracles,
  memory instruments and each component's oracle; and, after collection, the test modules). After the candidate's import and after each of its tests it compares: anything replaced
  is put back and the test (or every test of that candidate, for an import-time patch) fails, naming it.
- **Re-exported reference.** A candidate function that *is* a reference function (same object, or
  defined in ``fmspec.reference.*``) is flagged in the results; the example candidates in ``candidates/`` are
  exempt, since they are built from the reference on purpose.
- **Forbidden calls.** ``--fmspec-forbid attention=torch.nn.functional.scaled_dot_product_attention``
  fails a test of that component when the candidate's own code calls the function (the suite's oracle
  may still call it).
- **Leftover processes.** Child processes a candidate test started and left running are killed and the
  test fails.
- **Floods.** Captured output kept with a report is cut to ``MAX_CAPTURE`` characters per section.

Crashes (segfault, ``os._exit``, the OOM killer) are contained by running with pytest-xdist
(``-n auto``): the worker dies, xdist reports the test it was running as failed and starts a new
worker; the plugin records that test as failed with the reason. Hangs are stopped by pytest-timeout.
``--fmspec-memory-limit GB`` caps each test process's address space so that a runaway allocation raises
``MemoryError`` in the candidate instead of waking the OOM killer.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import resource
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import psutil

MAX_CAPTURE = 10_000
# modules whose public attributes a cheat would replace; suites.* test modules are added after collection
# (the suites' own helper modules are added by suite_helper_modules())
GUARDED = ("torch", "torch.nn.functional", "torch.linalg", "torch.testing", "torch.autograd", "math",
           "hypothesis", "fmspec.outcomes")
GUARDED_CLASSES = ("torch.Tensor",)


def suite_helper_modules() -> list[str]:
    """Every module of fmspec.suites that is not a test or bench module (the assertion, tolerance and
    strategy modules and the oracles in ``_<component>_helpers``): guarded like GUARDED, from before the
    first candidate is imported, so that one replaced at import time is found and put back."""
    import pkgutil

    import fmspec.suites

    return [f"fmspec.suites.{m.name}" for m in pkgutil.iter_modules(fmspec.suites.__path__)
            if not m.name.startswith(("test_", "bench_")) and m.name != "conftest"]


def resolve(dotted: str) -> Any:
    """The module, or the attribute of a module, a dotted name names: ``torch.nn.functional.relu``."""
    module, _, attr = dotted.rpartition(".")
    try:
        return importlib.import_module(dotted)
    except ImportError:
        return getattr(importlib.import_module(module), attr)


class Snapshot:
    """Identity of every public attribute of some modules and classes, to find and undo patches."""

    def __init__(self) -> None:
        self.owners: dict[str, Any] = {}
        self.attrs: dict[str, dict[str, Any]] = {}

    def add(self, name: str, owner: Any) -> None:
        self.owners[name] = owner
        self.attrs[name] = dict(vars(owner))

    def add_modules(self, names: tuple[str, ...] | list[str]) -> None:
        for name in names:
            try:
                self.add(name, resolve(name))
            except Exception:  # noqa: BLE001  not importable here: its tests report why when collected
                continue

    def changes(self) -> list[str]:
        """Attributes replaced, added or deleted since the snapshot, as ``module.attr``."""
        out = []
        for name, owner in self.owners.items():
            before, now = self.attrs[name], vars(owner)
            for key, value in before.items():
                if key.startswith("__") and key not in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
                    continue
                new = now.get(key, _GONE)
                if new is not value and not isinstance(new, ModuleType) and not _torch_wrapper_of(new, value):
                    out.append(f"{name}.{key}")
            for key in now.keys() - before.keys():  # importing a submodule adds it to its package: not a patch
                if not key.startswith("_") and not isinstance(now[key], ModuleType):
                    out.append(f"{name}.{key}")
        return out

    def restore(self) -> None:
        for name, owner in self.owners.items():
            before, now = self.attrs[name], vars(owner)
            for key, value in before.items():
                if now.get(key, _GONE) is not value and not isinstance(now.get(key), ModuleType):
                    _set(owner, key, value)
            for key in list(now.keys() - before.keys()):
                if not key.startswith("_") and not isinstance(now[key], ModuleType):
                    try:
                        delattr(owner, key)
                    except (AttributeError, TypeError):
                        pass


_GONE = object()
_TORCH_DIR = str(Path(importlib.util.find_spec("torch").origin).parent)


def _torch_wrapper_of(new: Any, old: Any) -> bool:
    """torch rebinding its own function to a wrapper of it (torch._dynamo wraps torch.manual_seed when it is
    first imported): the wrapper's code lives in torch and ``__wrapped__`` is the original."""
    code = getattr(new, "__code__", None)
    return getattr(new, "__wrapped__", None) is old and code is not None and code.co_filename.startswith(_TORCH_DIR)


def _set(owner: Any, key: str, value: Any) -> None:
    try:
        setattr(owner, key, value)
    except (AttributeError, TypeError):  # builtin types: torch.Tensor's C slots
        pass


def is_builtin_candidate(source: str) -> bool:
    """Candidates shipped in candidates/ (reference, mutants, torch_native) may reuse the reference."""
    if source.startswith("path "):
        import fmspec.candidates

        return Path(source[5:]).resolve().is_relative_to(Path(fmspec.candidates.__file__).resolve().parent)
    return " = fmspec.candidates." in source or source.startswith("module fmspec.candidates.")


def reexports_reference(fn: Any) -> bool:
    """True when a candidate's feature is the reference's own code."""
    module = getattr(fn, "__module__", None) or ""
    if module == "fmspec.reference" or module.startswith("fmspec.reference."):
        return True
    return isinstance(fn, ModuleType) and fn.__name__.startswith("fmspec.reference")


def candidate_files(obj: Any) -> tuple[str, ...]:
    """Source roots of a candidate: its package folder or its file (to tell its frames from the suite's)."""
    roots = []
    for attr in ("__path__",):
        roots += [str(Path(p).resolve()) for p in getattr(obj, attr, []) or []]
    file = getattr(obj, "__file__", None)
    if file and not roots:
        roots.append(str(Path(file).resolve()))
    return tuple(roots)


class ForbiddenCalls:
    """Wraps forbidden functions; records calls made from the candidate's own frames."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.originals: dict[str, tuple[Any, str, Callable]] = {}
        self.calls: list[str] = []
        self.roots: tuple[str, ...] = ()

    def install(self, roots: tuple[str, ...]) -> None:
        self.roots, self.calls = roots, []
        for dotted in self.names:
            module, _, attr = dotted.rpartition(".")
            owner = resolve(module)
            original = getattr(owner, attr)
            self.originals[dotted] = (owner, attr, original)
            setattr(owner, attr, self._wrap(dotted, original))

    def uninstall(self) -> None:
        for owner, attr, original in self.originals.values():
            setattr(owner, attr, original)
        self.originals.clear()

    def _wrap(self, dotted: str, original: Callable) -> Callable:
        def guard(*args, **kwargs):
            if self._from_candidate():
                self.calls.append(dotted)
            return original(*args, **kwargs)

        return guard

    def _from_candidate(self) -> bool:
        frame = sys._getframe(2)
        while frame is not None:
            filename = frame.f_code.co_filename
            if any(filename.startswith(root) for root in self.roots):
                return True
            frame = frame.f_back
        return False


def children() -> set[int]:
    """Pids of this process's children: read from /proc/self/task/*/children on Linux (fast: this runs
    around every candidate test), from psutil elsewhere."""
    try:
        pids: set[int] = set()
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as fh:
                pids.update(int(p) for p in fh.read().split())
        return pids
    except OSError:
        try:
            return {p.pid for p in psutil.Process().children(recursive=True)}
        except psutil.Error:
            return set()


def kill_new_children(before: set[int]) -> list[str]:
    """Kill processes started since ``before``; their command lines, for the failure message."""
    killed = []
    for pid in children() - before:
        try:
            proc = psutil.Process(pid)
            cmd = " ".join(proc.cmdline())[:120] or proc.name()
            proc.kill()
            killed.append(f"pid {pid} ({cmd})")
        except psutil.Error:
            continue
    return killed


def limit_memory(gigabytes: float) -> None:
    """Cap this process's address space (Linux/macOS); allocation beyond it raises MemoryError."""
    limit = int(gigabytes * 2**30)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def truncate_sections(sections: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for title, content in sections:
        if len(content) > MAX_CAPTURE:
            cut = len(content) - MAX_CAPTURE
            content = content[: MAX_CAPTURE // 2] + f"\n... [{cut} characters cut] ...\n" + content[-MAX_CAPTURE // 2:]
        out.append((title, content))
    return out


__all__ = ["Snapshot", "ForbiddenCalls", "children", "kill_new_children", "limit_memory", "truncate_sections",
           "reexports_reference", "is_builtin_candidate", "candidate_files", "resolve"]
