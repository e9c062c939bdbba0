"""The fmspec pytest plugin: options, candidate loading, missing/unsupported outcomes, results file.

Registered by the ``pytest11`` entry point ``fmspec.plugin`` (and, in a checkout, by the root
``conftest.py`` under the same name), so ``pytest suites --candidate mine`` (checkout) and
``pytest --pyargs fmspec.suites --candidate mine`` (installed) behave the same.

It is a guest in every pytest run of the environment, so it does nothing until asked: only its options
are added. A run becomes an *fmspec run* when an fmspec option is given (``--candidate``,
``--fmspec-*``) or when an fmspec suite is collected (the suites' ``conftest.py`` calls
:func:`activate`). Only then does it load candidates and hypothesis profiles, and write the results file;
torch's settings (one thread, no TF32) are applied around fmspec's own tests only and restored after each.

How a test uses it::

    pytestmark = pytest.mark.component("posenc")

    @pytest.mark.needs("posenc.sinusoidal")
    def test_values_in_unit_interval(candidate):
        pe = candidate.posenc.sinusoidal(16, 8)

``candidate`` is parametrized over every ``--candidate``. Before the test runs, each feature named by
``needs`` is looked up on the candidate: an absent one makes the test *missing*. A parameter named
``device`` or ``dtype`` is checked against the candidate's ``CAPABILITIES`` for the component: an
undeclared one makes the test *unsupported*. ``NotImplementedError`` raised by the candidate during the
test also counts as missing.
"""

from __future__ import annotations

import contextlib

import functools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fmspec import benchutil, loader, trust
from fmspec.outcomes import ExampleTimeout, Missing, NotRun, Unsupported

STATE = pytest.StashKey["State"]()
INFO = pytest.StashKey[dict]()
ISOLATED_FLAGS = pytest.StashKey[list]()  # what the candidate process reported of a test (--fmspec-isolate)
STARTED = pytest.StashKey[float]()

DEFAULT_CANDIDATE = "reference"
DEFAULT_RESULTS = "fmspec-results.json"
# capabilities a candidate has unless CAPABILITIES says otherwise (see docs/contract.md)
DEFAULT_DEVICES = ("cpu",)
DEFAULT_DTYPES = ("float32", "float64")

MARKERS = (
    "component(name): the component a test module checks (posenc, attention, ...)",
    "needs(*features): candidate features the test needs, e.g. 'posenc.sinusoidal'; absent -> missing",
    "capability(name): a tier the test needs, e.g. 'tensors'; CAPABILITIES[component][name] false -> unsupported",
    "smoke: a quick selection of the suite (pytest -m smoke)",
    "bench: a benchmark; runs only with --fmspec-bench, after conformance",
    "gpu: needs a CUDA device; skipped without one",
)


@dataclass
class State:
    """What the plugin knows about this run (one per pytest config)."""

    active: bool = False  # an fmspec run: asked for by an option, or an fmspec suite collected
    asked: bool = False  # an fmspec option was given: every test of the run is fmspec's
    guard: "Guard | None" = None
    candidates: list = field(default_factory=list)
    suites_dir: Path | None = None
    conformance: dict = field(default_factory=dict)  # (candidate, component) -> {property: outcome}


# ----------------------------------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser) -> None:
    from fmspec import profiles

    profiles.register_own_names()  # before hypothesis's plugin loads --hypothesis-profile in its pytest_configure
    group = parser.getgroup("fmspec", "fmspec conformance suite")
    group.addoption("--candidate", action="append", default=[], metavar="NAME",
                    help="candidate to test: an installed name (see --list-candidates), package.module[:attr], "
                         "or a path to a .py file or package folder; repeat for several (default: reference)")
    group.addoption("--list-candidates", action="store_true", help="list installed candidates and exit")
    group.addoption("--fmspec-results", metavar="PATH", default=None,
                    help=f"where an fmspec run writes its JSON results file (default: {DEFAULT_RESULTS}; "
                         "'none' to disable)")
    group.addoption("--fmspec-bench", action="store_true",
                    help="also run the benchmarks (bench_*.py), after conformance, for components that passed")
    group.addoption("--fmspec-forbid", action="append", default=[], metavar="COMPONENT=FUNCTION",
                    help="fail a test of COMPONENT whose candidate code calls FUNCTION (a dotted name, e.g. "
                         "attention=torch.nn.functional.scaled_dot_product_attention); repeatable")
    group.addoption("--fmspec-memory-limit", type=float, default=None, metavar="GB",
                    help="cap the address space of each test process, so a runaway candidate gets MemoryError")
    group.addoption("--fmspec-hidden-seed", type=int, default=None, metavar="N",
                    help="grade on examples the candidate has never seen: the ci profile, not derandomized, "
                         "seeded with N (recorded as hidden; rerun with the same N to reproduce)")
    group.addoption("--fmspec-isolate", action="store_true",
                    help="run each candidate in a sandboxed process of its own, reached through a proxy: nothing "
                         "it does can reach the tests, the oracles or the results (see docs/trust.md)")
    group.addoption("--fmspec-call-timeout", type=float, default=None, metavar="S",
                    help="with --fmspec-isolate: the most seconds one call into the candidate may take (default: "
                         "the test's timeout)")


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("list_candidates"):
        lines = loader.describe_installed()
        print("installed fmspec candidates (entry point group fmspec.candidates):")
        print("\n".join("  " + line for line in lines) if lines else "  none")
        print("also accepted: --candidate package.module[:attr] and --candidate path/to/file.py or package folder")
        return 0
    return None


# ------------------------------------------------------------------------------------------ configuration
def _asked(config: pytest.Config) -> bool:
    """Was an fmspec option given on the command line?"""
    return bool(config.getoption("candidate") or config.getoption("fmspec_results") is not None
                or config.getoption("fmspec_bench") or config.getoption("fmspec_forbid")
                or config.getoption("fmspec_memory_limit") is not None
                or config.getoption("fmspec_hidden_seed") is not None
                or config.getoption("fmspec_isolate") or config.getoption("fmspec_call_timeout") is not None)


def _state(config: pytest.Config) -> State:
    return config.stash.setdefault(STATE, State())


def pytest_configure(config: pytest.Config) -> None:
    state = _state(config)
    if _asked(config):
        state.asked = True
        activate(config)


def activate(config: pytest.Config) -> None:
    """Make this run an fmspec run (once): markers, hypothesis profiles, candidates, memory limit, results
    file. Called at configure time when an fmspec option was given, by the suites' conftest.py when a suite
    is collected, and on the xdist controller when a worker collected one."""
    state = _state(config)
    if state.active:
        return
    state.active = True
    if config.getoption("fmspec_bench") and not config.pluginmanager.hasplugin("benchmark"):
        raise pytest.UsageError("--fmspec-bench needs pytest-benchmark: pip install 'fmspec[bench]' "
                                "(and no -p no:benchmark)")
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    _load_hypothesis_profile(config)
    state.guard = Guard(config)
    specs = config.getoption("candidate") or [DEFAULT_CANDIDATE]
    state.candidates = distinct_names([state.guard.load(spec) for spec in specs])
    limit = config.getoption("fmspec_memory_limit")
    if limit is not None and not _is_xdist_controller(config):
        trust.limit_memory(limit)
    path = config.getoption("fmspec_results") or DEFAULT_RESULTS
    if path.lower() != "none" and not hasattr(config, "workerinput"):  # xdist workers report to the controller
        from fmspec.recorder import Recorder, ResultsWriter

        target = Path(path).expanduser().resolve()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(target.parent, os.W_OK):
                raise PermissionError("not writable")
        except OSError as exc:
            raise pytest.UsageError(f"--fmspec-results {path}: cannot write to {target.parent} ({exc.strerror or exc})") from None
        names = {c.name: spec for c, spec in zip(state.candidates, specs)}
        from fmspec import integrity

        recorder = Recorder(config, ResultsWriter(target, secret=integrity.key(create=True)), state.candidates, names)
        config.pluginmanager.register(recorder, "fmspec-recorder")
        recorder.start()


def distinct_names(candidates: list[loader.Candidate]) -> list[loader.Candidate]:
    """Candidates that share a name are kept apart, never merged: path candidates are renamed by the
    shortest end of their path that tells them apart (``subs/alice/mine``, ``subs/bob/mine`` -> ``alice/mine``,
    ``bob/mine``); the same candidate given twice, or two installed ones of one name, is a usage error."""
    import dataclasses

    out = list(candidates)
    groups: dict[str, list[int]] = {}
    for i, cand in enumerate(out):
        groups.setdefault(cand.name, []).append(i)
    for name, idxs in groups.items():
        if len(idxs) < 2:
            continue
        sources = [out[i].source for i in idxs]
        if len(set(sources)) < len(sources) or not all(src.startswith("path ") for src in sources):
            raise pytest.UsageError(f"--candidate: {len(idxs)} candidates are named {name!r} "
                                    f"({'; '.join(sources)}): give each once, or name them apart (CANDIDATE_NAME)")
        paths = [Path(src.removeprefix("path ")) for src in sources]
        for depth in range(2, max(len(p.parts) for p in paths) + 1):
            names = ["/".join(p.with_suffix("").parts[-depth:]) if p.suffix == ".py" else "/".join(p.parts[-depth:])
                     for p in paths]
            if len(set(names)) == len(names):
                break
        for i, new in zip(idxs, names):
            out[i] = dataclasses.replace(out[i], name=new)
    return out


def _load_hypothesis_profile(config: pytest.Config) -> None:
    """fmspec's profiles are registered (and one loaded) in fmspec runs only: hypothesis's own "default"
    and "ci" profiles stay as they are in every other run."""
    from fmspec import profiles

    profiles.register()
    hidden = config.getoption("fmspec_hidden_seed")
    if hidden is not None:
        profiles.load_hidden()  # the seed: given to each test at collection (pytest_collection_modifyitems)
    else:
        profiles.load(config.getoption("hypothesis_profile", None) or "default")


def _is_xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def suites_dir(config: pytest.Config) -> Path:
    state = _state(config)
    if state.suites_dir is None:
        import fmspec.suites

        state.suites_dir = Path(fmspec.suites.__file__).resolve().parent
    return state.suites_dir


def is_suite_path(config: pytest.Config, path: Path) -> bool:
    """Is ``path`` one of fmspec's suite or bench modules?"""
    return Path(path).resolve().parent == suites_dir(config)


def ours(item: pytest.Item) -> bool:
    """Is this one of fmspec's tests? Every test of a run that asked for fmspec by option; otherwise the
    tests of fmspec's own suites only."""
    state = item.config.stash.get(STATE, None)
    return bool(state and state.active and (state.asked or is_suite_path(item.config, item.path)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids: list[str]) -> None:
    """On the xdist controller (which collects nothing itself): a worker collected an fmspec suite."""
    config = node.config
    if _state(config).active:
        return
    if any(is_suite_path(config, config.rootpath / nodeid.split("::", 1)[0]) for nodeid in ids):
        activate(config)


class Guard:
    """Applies fmspec/trust.py around candidates: import-time and per-test tampering, forbidden calls,
    leftover processes."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.snapshot = trust.Snapshot()
        self.snapshot.add_modules(trust.GUARDED)
        self.snapshot.add_modules(trust.suite_helper_modules())  # imported here, before any candidate
        for name in trust.GUARDED_CLASSES:
            self.snapshot.add(name, trust.resolve(name))
        self.forbid: dict[str, list[str]] = {}
        for rule in config.getoption("fmspec_forbid"):
            component, sep, function = rule.partition("=")
            if not sep or not component or not function:
                raise pytest.UsageError(f"--fmspec-forbid {rule!r}: expected COMPONENT=module.function")
            try:
                trust.resolve(function)
            except (ImportError, AttributeError):
                raise pytest.UsageError(f"--fmspec-forbid {rule!r}: no function {function!r}") from None
            self.forbid.setdefault(component, []).append(function)
        self.isolate = bool(config.getoption("fmspec_isolate"))

    def load(self, spec: str) -> loader.Candidate:
        if self.isolate:
            from fmspec import isolate

            return isolate.load(spec, self.config, self.forbid)
        try:
            cand = loader.load(spec)
        except loader.CandidateImportError as exc:
            cand = loader.Candidate(exc.name, exc.source, exc.version, None, error=str(exc))
        except loader.CandidateError as exc:
            raise pytest.UsageError(str(exc)) from None
        patched = self.snapshot.changes()
        if patched:
            self.snapshot.restore()
            cand.flags.append(f"patched {', '.join(patched[:5])} while being imported")
            cand = loader.Candidate(cand.name, cand.source, cand.version, cand.obj,
                                    error=f"candidate replaced {', '.join(patched[:5])} while being imported "
                                          f"(monkeypatching the suite, torch or the reference is not allowed)",
                                    flags=cand.flags)
        return cand

    def guard_modules(self, items: list[pytest.Item]) -> None:
        for module in {item.module for item in items if getattr(item, "module", None) is not None}:
            self.snapshot.add(module.__name__, module)

    def begin(self, cand: loader.Candidate, component: str | None) -> tuple[trust.ForbiddenCalls, set[int]]:
        """Before a candidate test's call: install the forbidden-call guards, note the running processes."""
        forbidden = trust.ForbiddenCalls(self.forbid.get(component or "", []) if not self.isolate else [])
        forbidden.install(trust.candidate_files(cand.obj) if not self.isolate else ())
        before = trust.children()
        return forbidden, before

    def problems(self, forbidden: trust.ForbiddenCalls, before: set[int],
                 cand: loader.Candidate | None = None, item: pytest.Item | None = None) -> list[str]:
        forbidden.uninstall()
        out = []
        if self.isolate and cand is not None:
            from fmspec import isolate

            found, flags = isolate.end_test(cand)
            out += found
            if item is not None:
                item.stash[ISOLATED_FLAGS] = flags
        patched = self.snapshot.changes()
        if patched:
            self.snapshot.restore()
            out.append(f"candidate replaced {', '.join(patched[:5])} (monkeypatching the suite, torch or the "
                       f"reference is not allowed; restored)")
        if forbidden.calls:
            out.append(f"candidate called {', '.join(sorted(set(forbidden.calls)))}, forbidden for this component "
                       f"(--fmspec-forbid)")
        killed = trust.kill_new_children(before)
        if killed:
            out.append(f"candidate left processes running: {', '.join(killed[:3])} (killed)")
        return out


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    for cand in _state(config).candidates:
        lines.append(f"fmspec: candidate {cand.name} ({cand.source}, {cand.version})")
        if _state(config).guard.isolate:
            from fmspec import isolate

            lines.append(f"fmspec: candidate {cand.name} runs in a process of its own: {isolate.describe(cand)}")
        if cand.error:
            lines.append(f"fmspec: candidate {cand.name} could not be imported: {cand.error}")
    return lines


# ---------------------------------------------------------------------------------------------- collection
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    state = _state(metafunc.config)
    if "candidate" not in metafunc.fixturenames or not state.active:
        return
    if not (state.asked or is_suite_path(metafunc.config, metafunc.definition.path)):
        return  # a project's own fixture that happens to be called "candidate"
    metafunc.parametrize("candidate", state.candidates, ids=[c.name for c in state.candidates], scope="module")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _state(config).active:
        return
    hidden = config.getoption("fmspec_hidden_seed")
    if hidden is not None:
        from fmspec import profiles

        profiles.seed_tests([item for item in items if ours(item)], hidden)
    bench = [item for item in items if ours(item) and item.get_closest_marker("bench")]
    if not bench:
        return
    chosen = set(bench)
    rest = [item for item in items if item not in chosen]
    if not config.getoption("fmspec_bench"):
        config.hook.pytest_deselected(items=bench)
        items[:] = rest
        return
    # benchmarks after conformance, so they can see which components passed
    items[:] = rest + bench


def pytest_collection_finish(session: pytest.Session) -> None:
    state = _state(session.config)
    if state.active:
        state.guard.guard_modules([item for item in session.items if ours(item)])


# --------------------------------------------------------------------------------------------- test setup
def _params(item: pytest.Item) -> dict:
    return getattr(getattr(item, "callspec", None), "params", {})


def test_info(item: pytest.Item) -> dict:
    """Component, features, property and candidate of a test item (what the results file records);
    worked out once per item, a fresh copy returned each time (callers add to it)."""
    if INFO not in item.stash:
        item.stash[INFO] = _test_info(item)
    return dict(item.stash[INFO])


def _test_info(item: pytest.Item) -> dict:
    params = _params(item)
    cand = params.get("candidate")
    features = [f for m in item.iter_markers("needs") for f in m.args]
    comp_marker = item.get_closest_marker("component")
    if comp_marker:
        component = comp_marker.args[0]
    elif features:
        component = features[0].split(".")[0]
    else:
        component = item.module.__name__.rpartition(".")[2].removeprefix("test_").removeprefix("bench_") if getattr(item, "module", None) else None
    shown = {k: _param_str(v) for k, v in params.items() if k != "candidate"}
    return {
        "candidate": cand.name if isinstance(cand, loader.Candidate) else None,
        "component": component,
        "features": features,
        "property": getattr(item, "originalname", item.name),
        "params": shown,
    }


def _param_str(value: object) -> str:
    return _utf8(str(value).removeprefix("torch."))


def _utf8(text: str) -> str:
    """Text that survives UTF-8 (xdist's wire, the JSON file): lone surrogates become escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Torch's settings are the suite's around each of fmspec's tests, and the project's again after."""
    if not ours(item):
        return (yield)
    import torch

    item.stash[STARTED] = time.monotonic()  # where pytest-timeout starts its timer too
    saved = _torch_settings()
    if not item.config.getoption("fmspec_bench") and saved[0] != 1:
        torch.set_num_threads(1)  # tiny tensors: threads only oversubscribe the cores (xdist runs one process per core)
    try:
        return (yield)
    finally:
        _restore_torch_settings(saved)


def _torch_settings() -> tuple:
    import torch

    try:
        precision = torch.get_float32_matmul_precision()
    except RuntimeError:  # the project mixed torch's legacy and new precision APIs: not restorable by name
        precision = None
    return (torch.get_num_threads(), precision, torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32)


def _restore_torch_settings(saved: tuple) -> None:
    """Back to the project's settings, touching only what differs (torch refuses to report a precision
    set through both its legacy and its new API, so the legacy flags are set only where needed)."""
    import torch

    threads, precision, tf32_matmul, tf32_cudnn = saved
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if precision is not None:
        torch.set_float32_matmul_precision(precision)
    if torch.backends.cuda.matmul.allow_tf32 != tf32_matmul:
        torch.backends.cuda.matmul.allow_tf32 = tf32_matmul
    if torch.backends.cudnn.allow_tf32 != tf32_cudnn:
        torch.backends.cudnn.allow_tf32 = tf32_cudnn


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not ours(item):
        return
    _pin_numerics()
    params = _params(item)
    device = _param_str(params["device"]) if "device" in params else None
    on_gpu = device == "cuda" or item.get_closest_marker("gpu") is not None
    if on_gpu and not _cuda_available():
        pytest.skip("no CUDA device")
    if on_gpu and _state(item.config).guard.isolate \
            and not os.environ.get("FMSPEC_ISOLATE_CUDA"):  # (set: try them, benchmarks/run_gpu_isolated.sh)
        pytest.skip("GPU tests and benchmarks run in process: CUDA does not initialise in the sandboxed "
                    "candidate process yet (docs/trust.md)")
    cand = params.get("candidate")
    if not isinstance(cand, loader.Candidate):
        return
    if cand.error:
        raise NotRun(f"candidate {cand.name!r} could not be imported: {cand.error}")
    info = test_info(item)
    if _state(item.config).guard.isolate:
        from fmspec import isolate

        timeout = _timeout_of(item)
        started = item.stash.get(STARTED, time.monotonic())
        isolate.begin_test(cand, info["component"], 0.9 * timeout - (time.monotonic() - started) if timeout else None)
    for feature in info["features"]:
        try:
            cand.resolve(feature)
        except AttributeError:
            raise Missing(f"candidate {cand.name!r} has no {feature}") from None
    caps = cand.capabilities.get(info["component"], {}) if info["component"] else {}
    if device is not None and device not in caps.get("devices", DEFAULT_DEVICES):
        raise Unsupported(f"{info['component']} on {device} (CAPABILITIES)")
    if "dtype" in params:
        dtype = _param_str(params["dtype"])
        if dtype not in caps.get("dtypes", DEFAULT_DTYPES):
            raise Unsupported(f"{info['component']} in {dtype} (CAPABILITIES)")
    for marker in item.iter_markers("capability"):
        for tier in marker.args:
            if caps.get(tier, True) is False:
                raise Unsupported(f"{info['component']} tier {tier!r} (CAPABILITIES)")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _pin_numerics() -> None:
    """Matmul precision is the suite's choice, not whatever a candidate set (no TF32)."""
    import torch

    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    cand = _params(item).get("candidate")
    if not ours(item) or not isinstance(cand, loader.Candidate):
        return (yield)
    _guard_examples(item)
    guard = _state(item.config).guard
    forbidden, before = guard.begin(cand, test_info(item)["component"])
    timeout = _timeout_of(item)
    started = item.stash.get(STARTED, time.monotonic())
    _DEADLINE[0] = started + 0.95 * timeout if timeout else None  # before pytest-timeout's own timer fires
    timing = loader.unchecked() if item.get_closest_marker("bench") else contextlib.nullcontext()
    try:
        with timing:  # a benchmark times the candidate's functions, not the per-call contract checks
            result = yield
    except BaseException as exc:
        problems = guard.problems(forbidden, before, cand, item)
        if problems:
            raise pytest.fail.Exception("; ".join(problems), pytrace=False) from exc
        if isinstance(exc, NotImplementedError):  # missing, as a skip: pytest formats no traceback for it
            raise Missing(f"Missing: NotImplementedError: {exc}") from None
        raise
    finally:
        _DEADLINE[0] = None
    problems = guard.problems(forbidden, before, cand, item)
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
    return result


# the running test's time limit (pytest-timeout's), as a monotonic deadline: read between hypothesis examples
_DEADLINE: list[float | None] = [None]


def configured_timeout(config: pytest.Config) -> object | None:
    """The run's timeout as pytest-timeout reads it, in its order: --timeout, PYTEST_TIMEOUT, the ini value;
    None where none is set (0 where pytest-timeout is not installed: no timeout to keep)."""
    try:
        for value in (config.getoption("timeout"), os.environ.get("PYTEST_TIMEOUT") or None,
                      config.getini("timeout") or None):
            if value is not None:
                return value
    except ValueError:  # pytest-timeout not installed (it is a dependency; a broken environment)
        return 0
    return None


def _timeout_of(item: pytest.Item) -> float | None:
    """pytest-timeout's limit for this test: its marker, else the run's (:func:`configured_timeout`)."""
    marker = item.get_closest_marker("timeout")
    value = (marker.args[0] if marker.args else marker.kwargs.get("timeout")) if marker else None
    if value is None:
        value = configured_timeout(item.config)
    try:
        return float(value) if value else None
    except (TypeError, ValueError):
        return None


def _guard_examples(item: pytest.Item) -> None:
    """Wrap a hypothesis test's examples (hypothesis lets a runner replace ``test.hypothesis.inner_test``):

    - the candidate's NotImplementedError becomes Missing at the first example: hypothesis re-raises skips
      at once, where it would shrink a "failure" that is not one (outside hypothesis, makereport does it);
    - past the test's time limit, no further example runs: pytest-timeout interrupts a hanging example
      once, hypothesis takes that for a failure and calls the candidate again to shrink it, with no timer
      left; :class:`ExampleTimeout` is a BaseException hypothesis does not catch, so the test ends there.
    """
    handle = getattr(getattr(item, "obj", None), "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if inner is None or getattr(inner, "_fmspec_guarded", False):
        return

    @functools.wraps(inner)
    def run_example(*args, **kwargs):
        deadline = _DEADLINE[0]
        if deadline is not None and time.monotonic() > deadline:
            raise ExampleTimeout("the test ran past its timeout (a hanging example, retried by hypothesis)")
        try:
            return inner(*args, **kwargs)
        except NotImplementedError as exc:
            raise Missing(f"Missing: NotImplementedError: {exc}") from None
        except pytest.fail.Exception as exc:
            if "from pytest-timeout" in str(exc):  # its signal interrupted this example: end the test here
                raise ExampleTimeout(str(exc)) from None
            raise

    run_example._fmspec_guarded = True
    handle.inner_test = run_example


def _flags(item: pytest.Item, info: dict) -> list[str]:
    cand = _params(item).get("candidate")
    if not isinstance(cand, loader.Candidate) or cand.obj is None or trust.is_builtin_candidate(cand.source):
        return []
    if _state(item.config).guard.isolate:
        return []  # what the candidate process runs is watched there (fmspec/isolate.py)
    flags = []
    for feature in info["features"]:
        try:
            if trust.reexports_reference(cand.resolve(feature)):
                flags.append(f"{feature} is the reference's own code")
        except AttributeError:
            continue  # missing: reported as such
    return flags


# ---------------------------------------------------------------------------------------------- reporting
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if not ours(item):
        return report
    info = test_info(item)
    excinfo = call.excinfo
    kind = None
    if excinfo is not None:
        if excinfo.errisinstance(Missing):
            kind = "missing"
        elif excinfo.errisinstance(Unsupported):
            kind = "unsupported"
        elif excinfo.errisinstance(NotRun):
            kind = "not run"
        elif call.when == "call" and excinfo.errisinstance(NotImplementedError):
            kind = "missing"
            report.outcome = "skipped"
            excinfo = None
            report.longrepr = (str(item.path), item.location[1] or 0, f"Missing: NotImplementedError: {call.excinfo.value}")
        if kind and report.skipped and call.excinfo.errisinstance(pytest.skip.Exception):
            # a skip report's (path, line, reason), pointed at the test rather than at this plugin
            report.longrepr = (str(item.path), item.location[1] or 0, str(call.excinfo.value.msg))
    info["kind"] = kind
    if kind == "missing":
        info["absent"] = _absent(item, info, str(call.excinfo.value))
    info["flags"] = _flags(item, info) if call.when == "setup" else list(item.stash.get(ISOLATED_FLAGS, []))
    report.sections = trust.truncate_sections(report.sections)
    if excinfo is not None and report.failed:
        info["example"] = _hypothesis_example(excinfo.value)
    if call.when == "call":
        info["metrics"] = getattr(item, "fmspec_metrics", None)
        info["benchmark"] = _benchmark_record(item)
        _tally(item, info, report)
    elif report.failed:
        _tally(item, info, report)
    report.fmspec = info
    return report


def _absent(item: pytest.Item, info: dict, message: str) -> list[str]:
    """The features of a missing test that the candidate lacks or leaves unimplemented."""
    cand = _params(item).get("candidate")
    out = []
    for feature in info["features"]:
        try:
            cand.resolve(feature)
        except AttributeError:
            out.append(feature)
            continue
        if feature in message:  # NotImplementedError("posenc.sinusoidal"), as the template raises it
            out.append(feature)
    return out or list(info["features"])


def _benchmark_record(item: pytest.Item) -> dict | None:
    """pytest-benchmark's statistics of this test, read from its ``benchmark`` fixture once it ran; a
    device-timed benchmark's ``stats`` are its device figures (:func:`_device_stats`)."""
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    # ``benchmark.stats`` (None until the fixture ran, and with --benchmark-disable) and its ``as_dict()`` are
    # public names of pytest-benchmark: the objects its documented hooks (pytest_benchmark_generate_json,
    # pytest_benchmark_group_stats) receive, read here per test because those hooks fire only with --benchmark-json
    # or --benchmark-save.
    stats = getattr(fixture, "stats", None)
    if stats is None:
        return None
    data = stats.as_dict(include_data=False)
    params = data.get("params") or {}
    return {
        "nodeid": item.nodeid,
        "name": data.get("name"),
        "group": data.get("group"),
        "candidate": getattr(params.get("candidate"), "name", None),
        "component": test_info(item)["component"],
        "params": {k: _param_str(v) for k, v in params.items() if k != "candidate"},
        "stats": _device_stats(data.get("stats"), data.get("extra_info") or {}),
        "extra_info": data.get("extra_info"),
    }


def _device_stats(host: dict | None, extra_info: dict) -> dict | None:
    """The statistics a benchmark is compared by: for a device-timed one
    (``extra_info[benchutil.DEVICE_TIME]``), the device median and 20th/80th percentiles in seconds, with
    pytest-benchmark's host-clock statistics of the same call under ``host``; otherwise pytest-benchmark's own.

    ``{"median": 0.0012, "p20": 0.00118, "p80": 0.00125, "timer": "triton.testing.do_bench", "host": {...}}``"""
    device = extra_info.get(benchutil.DEVICE_TIME)
    if not isinstance(device, dict) or not isinstance(device.get("median_ms"), (int, float)):
        return host
    out = {"median": device["median_ms"] / 1e3}
    for q in ("p20", "p80"):
        if isinstance(device.get(f"{q}_ms"), (int, float)):
            out[q] = device[f"{q}_ms"] / 1e3
    return {**out, "timer": device.get("timer"), "host": host}


def _tally(item: pytest.Item, info: dict, report: pytest.TestReport) -> None:
    """Conformance outcomes of this process, by (candidate, component): what the benchmarks consult."""
    if item.get_closest_marker("bench") or info["candidate"] is None:
        return
    seen = _state(item.config).conformance.setdefault((info["candidate"], info["component"]), {})
    if report.failed:
        seen[info["property"]] = "failed"
    elif report.passed:
        seen.setdefault(info["property"], "passed")


def conformance(config: pytest.Config, component: str, candidate: str) -> dict[str, str]:
    """``{test property: "passed" | "failed"}`` of the component's conformance tests for the candidate that
    ran earlier in this process (benchmarks run after conformance, in the same process)."""
    return dict(_state(config).conformance.get((candidate, component), {}))


def _hypothesis_example(exc: BaseException) -> str | None:
    notes = [n for n in getattr(exc, "__notes__", []) if isinstance(n, str)]
    return _utf8("\n".join(notes)) or None


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config):
    kind = (getattr(report, "fmspec", None) or {}).get("kind")
    if kind == "missing" and report.skipped:
        return "missing", "M", ("MISSING", {"yellow": True})
    if kind == "unsupported" and report.skipped:
        return "unsupported", "U", ("UNSUPPORTED", {"yellow": True})
    if kind == "not run" and report.skipped:
        return "not run", "N", ("NOT RUN", {"red": True})
    return None


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """A candidate that could not be imported fails the run, though its tests are reported as not run."""
    state = _state(session.config)
    if state.active and any(c.error for c in state.candidates) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if state.guard is not None and state.guard.isolate:
        from fmspec import isolate

        isolate.stop_all(state.candidates)
    return (yield)


@pytest.fixture
def fmspec_metrics(request: pytest.FixtureRequest) -> dict:
    """A dict a test or benchmark fills with measurements; it lands in the results file."""
    metrics: dict = {}
    request.node.fmspec_metrics = metrics
    return metrics
