"""Finding and loading candidates.

A candidate is any Python object whose attributes are component namespaces (``posenc``, ``attention``,
...). ``--candidate SPEC`` accepts, tried in this order:

0. ``NAME=SPEC``: any of the forms below, named NAME in the results (``alice=subs/alice/mine``);
1. a path to a ``.py`` file or to a package folder (one holding ``__init__.py``);
2. the name of an entry point in the group ``fmspec.candidates`` (``--list-candidates`` shows them);
3. an importable ``package.module`` with an optional ``:attr`` (``mine.impl:Candidate``).

Every failure raises :class:`CandidateError` with one line that says what to do; the plugin turns it
into a usage error (exit status 4), never a traceback.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata as md
import importlib.util
import inspect
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

GROUP = "fmspec.candidates"


class CandidateError(Exception):
    """A candidate could not be resolved or imported; the message is one line for the user."""


class CandidateImportError(CandidateError):
    """The candidate was found but its own code raised while being imported."""

    def __init__(self, message: str, name: str, source: str, version: str = "unknown"):
        super().__init__(message)
        self.name, self.source, self.version = name, source, version


@dataclass(frozen=True, repr=False)
class Candidate:
    """A loaded candidate: its identity and the object that holds the component namespaces."""

    name: str
    source: str  # "entry point mine = mine", "path /x/y.py" or "module mine.impl"
    version: str
    obj: Any = field(repr=False, compare=False)
    error: str | None = None  # set when importing the candidate raised: all its tests fail with it
    flags: list = field(default_factory=list, compare=False)  # suspicious behaviour found (see fmspec/trust.py)

    @property
    def capabilities(self) -> dict:
        caps = getattr(self.obj, "CAPABILITIES", None) or {}
        if not isinstance(caps, dict):
            raise CandidateError(f"candidate {self.name!r}: CAPABILITIES must be a dict, got {type(caps).__name__}")
        return caps

    def resolve(self, feature: str) -> Any:
        """``resolve("posenc.sinusoidal")`` -> the candidate's function, or raise AttributeError."""
        obj = self.obj
        for part in feature.split("."):
            obj = getattr(obj, part)
        return obj

    def __getattr__(self, name: str) -> Any:  # candidate.posenc.sinusoidal(...) in tests
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(self.obj, name)
        if name.isupper():  # CAPABILITIES, CANDIDATE_NAME
            return value
        return _checked(value, name, top=True)

    def __repr__(self) -> str:  # shown in hypothesis's falsifying examples: keep it short
        return f"<candidate {self.name}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's printer: not field by field
        printer.text(repr(self))

    def identity(self) -> dict:
        return {"name": self.name, "source": self.source, "version": self.version, "error": self.error,
                "flags": list(self.flags)}


class Checked:
    """A candidate's component namespace as tests see it: each function reached through it is called
    through ``asserts.checked_call``, which holds every call to the contract (no argument modified in place;
    outputs new tensors on the arguments' device and dtype). Classes, constants and the objects the
    functions return are the candidate's own."""

    def __init__(self, namespace: Any, path: str):
        object.__setattr__(self, "_namespace", namespace)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _checked(getattr(self._namespace, name), f"{self._path}.{name}")

    def __dir__(self) -> list[str]:
        return dir(self._namespace)

    def __repr__(self) -> str:
        return f"<{self._path} of a candidate>"


_CHECKING = contextvars.ContextVar("fmspec_checking", default=True)


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Calls through a candidate's namespaces go straight to its functions for the duration: a benchmark
    times the candidate, not the snapshots and comparisons of the contract checks (the plugin applies it
    to every test marked ``bench``)."""
    token = _CHECKING.set(False)
    try:
        yield
    finally:
        _CHECKING.reset(token)


def _checked(value: Any, path: str, top: bool = False) -> Any:
    """``value`` as tests reach it: functions checked on every call, namespaces wrapped, the rest as is."""
    if inspect.isroutine(value) or isinstance(value, functools.partial):
        from fmspec.suites import asserts

        @functools.wraps(value)
        def checked(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            if not _CHECKING.get():
                return value(*args, **kwargs)
            return asserts.checked_call(value, path, args, kwargs)

        checked.__fmspec_checked__ = True
        return checked
    if isinstance(value, (types.ModuleType, types.SimpleNamespace)) or (top and inspect.isclass(value)):
        return Checked(value, path)
    return value


def entry_points() -> dict[str, md.EntryPoint]:
    """Installed candidates by name."""
    return {ep.name: ep for ep in md.entry_points(group=GROUP)}


def describe_installed() -> list[str]:
    """One line per installed candidate: name, target and distribution (for ``--list-candidates``)."""
    lines = []
    for name, ep in sorted(entry_points().items()):
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
        lines.append(f"{name:<16} {ep.value:<40} ({dist})")
    return lines


_NAMED = re.compile(r"^([A-Za-z0-9_.-]+)=(.+)$")


def load(spec: str) -> Candidate:
    """Resolve ``spec`` (``NAME=SPEC``, path, entry-point name or ``module[:attr]``) to a :class:`Candidate`."""
    if not spec or not spec.strip():
        raise CandidateError("--candidate: empty name")
    spec = spec.strip()
    named = _NAMED.match(spec)
    if named:
        try:
            cand = load(named.group(2))
        except CandidateImportError as exc:
            exc.name = named.group(1)
            raise
        return dataclasses.replace(cand, name=named.group(1))
    path = Path(spec)
    if spec.endswith(".py") or "/" in spec or spec.startswith("."):
        return _load_path(spec, path)
    eps = entry_points()
    if spec in eps:
        ep = eps[spec]
        try:
            obj = _import(ep.value, f"entry point {spec!r} ({ep.value})")
        except CandidateImportError as exc:
            exc.name, exc.source = spec, f"entry point {spec} = {ep.value}"
            raise
        version = ep.dist.version if ep.dist else "unknown"
        return Candidate(spec, f"entry point {spec} = {ep.value}", version, obj)
    module_name = spec.split(":", 1)[0]
    if ":" in spec or "." in spec or importlib.util.find_spec(module_name) is not None:
        obj = _import(spec, f"module {spec!r}")
        return Candidate(spec, f"module {spec}", _module_version(obj, module_name), obj)
    known = ", ".join(sorted(eps)) or "none"
    raise CandidateError(
        f"--candidate {spec!r}: no installed candidate, importable module or path of that name "
        f"(installed candidates: {known}; see --list-candidates)"
    )


def _import(target: str, what: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        if importlib.util.find_spec(module_name) is None:
            raise CandidateError(f"{what}: no module named {module_name!r}")
    except (ImportError, ValueError) as exc:  # parent package missing or broken
        raise CandidateError(f"{what}: cannot import {module_name!r}: {_one_line(exc)}") from None
    try:
        obj = importlib.import_module(module_name)
    except CandidateError:
        raise
    except BaseException as exc:  # the candidate's own code raised (SystemExit included)
        raise CandidateImportError(f"{what}: importing {module_name!r} raised {_one_line(exc)}",
                                   target, f"module {target}") from None
    for part in filter(None, attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CandidateError(f"{what}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _load_path(spec: str, path: Path) -> Candidate:
    path = path.expanduser().resolve()
    if not path.exists():
        raise CandidateError(f"--candidate {spec!r}: path does not exist")
    if path.is_dir():
        init = path / "__init__.py"
        if not init.exists():
            raise CandidateError(f"--candidate {spec!r}: folder is not a package (no __init__.py)")
        location, search = init, [str(path)]
    elif path.suffix == ".py":
        location, search = path, None
    else:
        raise CandidateError(f"--candidate {spec!r}: expected a .py file or a package folder")
    digest = source_digest(path)
    # a name per file, so two path candidates with the same stem do not collide in sys.modules
    module_name = f"fmspec_candidate_{path.stem}_{digest.hexdigest()[:8]}"
    if module_name in sys.modules:
        obj = sys.modules[module_name]
    else:
        module_spec = importlib.util.spec_from_file_location(module_name, location, submodule_search_locations=search)
        assert module_spec is not None and module_spec.loader is not None
        obj = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = obj
        try:
            module_spec.loader.exec_module(obj)
        except BaseException as exc:
            del sys.modules[module_name]
            raise CandidateImportError(f"--candidate {spec!r}: importing it raised {_one_line(exc)}",
                                       path.stem, f"path {path}", f"sha256:{digest.hexdigest()[:12]}") from None
    name = getattr(obj, "CANDIDATE_NAME", None) or path.stem
    return Candidate(str(name), f"path {path}", f"sha256:{digest.hexdigest()[:12]}", obj)


def source_digest(path: Path) -> "hashlib._Hash":
    """SHA-256 over a path candidate's source files (a ``.py`` file, or every ``.py`` of a package folder,
    in sorted order): its version, and how a grading run tells a changed submission."""
    path = Path(path)
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.read_bytes())
    return digest


def _module_version(obj: Any, module_name: str) -> str:
    version = getattr(obj, "__version__", None) or getattr(sys.modules.get(module_name), "__version__", None)
    if version:
        return str(version)
    top = module_name.split(".")[0]
    try:
        return md.version(top)
    except (md.PackageNotFoundError, ValueError):
        return "unknown"


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return " ".join(text.split())[:500]
