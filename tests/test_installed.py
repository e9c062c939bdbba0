"""fmspec as a user gets it: the wheel built from this checkout, installed into a fresh virtual
environment beside a small project that has packages called ``reports`` and ``suites`` of its own, its
own passing tests, and a candidate of its own (``mine/``).

The wheel is built and installed once per run (the first test to need it builds it; under pytest-xdist
the other workers wait for it), in a temporary folder: nothing is written into the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TORCH_PIN = "torch==2.13.0"  # the CPU build CI installs (.ci/run)
BUILD_TIMEOUT = 900

PROJECT = {
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
    "reports/__init__.py": 'def summary():\n    return "the project\'s own reports"\n',
    "suites/__init__.py": 'NAME = "the project\'s own suites"\n',
    # the project's own settings, which fmspec must leave as they are
    "conftest.py": "import torch\n\ntorch.set_num_threads(2)\ntorch.set_float32_matmul_precision('medium')\n",
    "tests/test_own.py": '''
import hypothesis
import pytest
import torch
from hypothesis import given, strategies as st

from reports import summary
from suites import NAME


def test_own_packages_are_imported():
    assert summary() == "the project's own reports" and NAME == "the project's own suites"


@pytest.mark.parametrize("repeat", range(2))
def test_torch_settings_are_the_projects(repeat):
    assert torch.get_num_threads() == 2
    assert torch.get_float32_matmul_precision() == "medium"


def test_hypothesis_default_profile_is_hypothesis_own():
    assert hypothesis.settings.default.max_examples == 100


@pytest.fixture(params=["a", "b"])
def candidate(request):
    return request.param


def test_own_fixture_called_candidate(candidate):
    assert candidate in ("a", "b")


@given(st.integers())
def test_own_property(x):
    assert x == x
''',
    # a candidate of the project's own, with one component
    "mine/__init__.py": "from . import posenc\n",
    "mine/posenc.py": '''
import torch


def sinusoidal(num_positions, dim, base=10000.0):
    if not isinstance(num_positions, int) or isinstance(num_positions, bool) or num_positions < 0:
        raise ValueError("num_positions must be an int >= 0")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError("dim must be an int >= 1")
    if not base > 1.0:
        raise ValueError("base must be > 1")
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]
    angle = pos * base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    out = torch.empty(num_positions, dim, dtype=torch.float64)
    out[:, 0::2] = torch.sin(angle)
    out[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return out
''',
}


class Installed:
    """The wheel, the fresh environment it is installed in, and the project beside it."""

    def __init__(self, root: Path):
        self.root = root
        self.wheel = next((root / "dist").glob("fmspec-*.whl"))
        self.bin = root / "venv" / "bin"
        self.project = root / "project"
        self.timings = json.loads((root / "timings.json").read_text())

    def run(self, *args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV", "PYTHON"))}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run([str(self.bin / args[0]), *args[1:]], cwd=cwd or self.project, env=env,
                              capture_output=True, text=True, timeout=timeout)


def _build(root: Path) -> None:
    """Copy the checkout's files, build the wheel, install it (and the CPU torch) into a new venv."""
    started = time.perf_counter()
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache",
        "fmspec-results*"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root / "dist"), str(source)],
                   check=True, capture_output=True, timeout=BUILD_TIMEOUT)
    built = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(root / "venv")], check=True, timeout=BUILD_TIMEOUT)
    wheel = next((root / "dist").glob("fmspec-*.whl"))
    subprocess.run([str(root / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", TORCH_PIN,
                    f"{wheel}[reports]"], check=True, capture_output=True, timeout=BUILD_TIMEOUT)
    installed = time.perf_counter()
    for name, text in PROJECT.items():
        path = root / "project" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip())
    (root / "timings.json").write_text(json.dumps({"build_s": round(built - started, 1),
                                                   "install_s": round(installed - built, 1)}))


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Built once per run: the first xdist worker to get here builds, the others wait for it."""
    shared = tmp_path_factory.getbasetemp().parent / "installed-wheel"  # shared by the xdist workers
    ready, failed = shared.with_suffix(".ready"), shared.with_suffix(".failed")
    try:
        shared.mkdir()
    except FileExistsError:
        deadline = time.monotonic() + 2 * BUILD_TIMEOUT
        while not (ready.exists() or failed.exists()):
            if time.monotonic() > deadline:
                pytest.fail("timed out waiting for another worker to build and install the wheel")
            time.sleep(1)
    else:
        try:
            _build(shared)
        except subprocess.CalledProcessError as exc:
            failed.write_text(f"{exc.cmd}: {(exc.stderr or b'')[-3000:]!r}")
        else:
            ready.touch()
    if failed.exists():
        pytest.fail(f"building or installing the wheel failed: {failed.read_text()}")
    return Installed(shared)


def test_wheel_holds_the_fmspec_namespace_only_and_no_mutants(installed):
    names = zipfile.ZipFile(installed.wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"fmspec", "fmspec-0.1.0.dist-info"}, tops
    assert not [n for n in names if "/mutants/" in n]
    for needed in ("fmspec/suites/data/gpt2/vocab.json", "fmspec/reports/templates/report.html.j2",
                   "fmspec/reports/policies/course.toml", "fmspec/candidates/template/__init__.py",
                   "fmspec/candidates/torch_native/__init__.py", "fmspec/suites/conftest.py"):
        assert needed in names, f"{needed} is not in the wheel"
    # every module of the checkout's shipped folders is in the wheel
    for folder, package in (("reference", "reference"), ("suites", "suites"), ("reports", "reports"),
                            ("fmspec", None), ("candidates", "candidates")):
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder)
            if rel.parts[0] == "mutants":
                continue
            inside = f"fmspec/{package}/{rel.as_posix()}" if package else f"fmspec/{rel.as_posix()}"
            assert inside in names, f"{folder}/{rel} is not in the wheel"


def test_projects_own_pytest_run_is_left_alone(installed):
    proc = installed.run("python", "-m", "pytest", "-p", "no:cacheprovider")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "7 passed" in proc.stdout, proc.stdout[-2000:]
    # pytest's own header lists the installed plugin (plugins: ..., fmspec-0.1.0); fmspec itself says nothing
    said = [line for line in (proc.stdout + proc.stderr).splitlines() if "fmspec" in line and not line.startswith("plugins:")]
    assert not said, said
    assert not list(installed.project.glob("fmspec-results*")), "a run that never asked for fmspec wrote its results"
    # the benchmarks' plugin is an extra (fmspec[bench]): installed without it, no "benchmark: ..." header
    assert not [line for line in proc.stdout.splitlines() if line.startswith("benchmark:")], proc.stdout[:2000]


def test_benchmarks_without_their_extra_are_one_usage_line(installed):
    proc = installed.run("python", "-m", "pytest", "--pyargs", "fmspec.suites.test_posenc", "--fmspec-bench",
                         "-p", "no:cacheprovider")
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "--fmspec-bench needs pytest-benchmark: pip install 'fmspec[bench]'" in proc.stderr, proc.stderr[-2000:]


def _collected(proc: subprocess.CompletedProcess) -> list[str]:
    """``file.py::test[params]`` of each collected test, whatever folder the file is in."""
    return sorted(line.strip().split("/")[-1] for line in proc.stdout.splitlines() if "::" in line)


def test_installed_suites_collect_what_the_checkout_collects(installed):
    args = ["--collect-only", "-q", "--fmspec-results", "none", "-p", "no:cacheprovider"]
    here = subprocess.run([sys.executable, "-m", "pytest", "suites", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    there = installed.run("python", "-m", "pytest", "--pyargs", "fmspec.suites", *args)
    assert there.returncode == 0, there.stdout[-3000:] + there.stderr[-2000:]
    ours, theirs = _collected(here), _collected(there)
    assert any(name.startswith("test_flash") for name in theirs), "no flash test collected from the wheel"
    assert ours == theirs, (f"{len(set(ours) - set(theirs))} only in the checkout, e.g. {sorted(set(ours) - set(theirs))[:3]}; "
                            f"{len(set(theirs) - set(ours))} only installed, e.g. {sorted(set(theirs) - set(ours))[:3]}")


def test_project_candidate_runs_from_the_installed_suites_and_is_reported(installed):
    proc = installed.run("python", "-m", "pytest", "--pyargs", "fmspec.suites.test_posenc", "--candidate", "./mine",
                         "-p", "no:cacheprovider")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    doc = json.loads((installed.project / "fmspec-results.json").read_text())
    assert doc["candidates"][0]["name"] == "mine"
    outcomes = {t["outcome"] for t in doc["tests"]}
    assert outcomes == {"passed"} and len(doc["tests"]) >= 10, outcomes
    assert not doc["candidates"][0]["flags"]

    proc = installed.run("fmspec", "run", "posenc", "--candidate", "./mine", "--fmspec-results", "run.json", "-q")
    assert proc.returncode == 0 and (installed.project / "run.json").exists(), proc.stdout[-2000:]
    proc = installed.run("fmspec", "report", "run.json", "fmspec-results.json", "-o", "report.html")
    assert proc.returncode == 0, proc.stderr
    assert "mine" in (installed.project / "report.html").read_text()
    proc = installed.run("fmspec", "export", "markdown", "run.json", "-o", "-")
    assert proc.returncode == 0 and "mine" in proc.stdout, proc.stderr


def test_fmspec_command_lists_and_explains(installed):
    proc = installed.run("fmspec", "--help")
    assert proc.returncode == 0 and all(c in proc.stdout for c in ("run", "list", "report", "gate", "export"))
    proc = installed.run("fmspec", "list")
    assert proc.returncode == 0 and "torch_native" in proc.stdout and "template" in proc.stdout, proc.stdout
    assert "mutant" not in proc.stdout
    proc = installed.run("fmspec", "template", "./fresh")
    assert proc.returncode == 0 and (installed.project / "fresh" / "attention.py").exists(), proc.stderr
    proc = installed.run("fmspec", "run", "posenc", "--candidate", "./fresh", "--fmspec-results", "none", "-q")
    assert proc.returncode == 0 and " missing in " in proc.stdout and "failed" not in proc.stdout, proc.stdout[-2000:]
    proc = installed.run("python", "-m", "fmspec", "run", "nosuchcomponent")
    assert proc.returncode == 4 and "no component 'nosuchcomponent'" in proc.stderr, proc.stderr


def test_shipped_code_runs_on_the_oldest_python_the_package_claims():
    """requires-python says >=3.10: vermin reads every shipped module for syntax and library use newer than
    that (tomllib is imported only where tomli is the fallback, marked novermin)."""
    folders = [str(ROOT / f) for f in ("fmspec", "reference", "suites", "reports", "candidates")]
    proc = subprocess.run([sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", "-t=3.10-", "--no-tips", "--violations",
                           "--eval-annotations", "--exclude-regex", "/mutants(/|$)", *folders],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
