"""The suites' own pytest wiring: what makes ``pytest --pyargs fmspec.suites`` from an installed fmspec
collect and run exactly as ``pytest suites`` does in the checkout, whatever the surrounding project's
pytest configuration says.

- Loading this file means an fmspec suite is being collected: the run becomes an fmspec run
  (:func:`fmspec.plugin.activate`).
- ``test_*.py`` and ``bench_*.py`` here are collected whatever the project's ``python_files`` says.
- A test here without a timeout from the command line, ``PYTEST_TIMEOUT`` or the ini file gets
  ``DEFAULT_TIMEOUT`` seconds (pytest-timeout's marker).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from fmspec import plugin

DEFAULT_TIMEOUT = 600
SUITE_FILES = ("test_*.py", "bench_*.py")
HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    plugin.activate(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    if file_path.suffix != ".py" or file_path.resolve().parent != HERE:
        return None
    if not any(fnmatch.fnmatch(file_path.name, pattern) for pattern in SUITE_FILES):
        return None
    if parent.session.isinitpath(file_path) or any(
            fnmatch.fnmatch(file_path.name, pattern) for pattern in parent.config.getini("python_files")):
        return None  # pytest's own python plugin collects it (a file named on the command line, or matching)
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if plugin.configured_timeout(config) is not None:
        return
    for item in items:
        if item.path.resolve().parent == HERE and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TIMEOUT))
