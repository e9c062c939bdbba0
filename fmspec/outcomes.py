"""The two outcomes fmspec adds to pytest's passed / failed / skipped.

*missing*: the candidate lacks a feature the test needs (an absent attribute, or a function that raises
``NotImplementedError``). Missing is not wrong: it is counted apart from failed, in the terminal summary
and in the results file, and a policy decides whether it is allowed.

*unsupported*: the candidate declares (``CAPABILITIES``) that it does not support what the test runs on,
e.g. flash attention on ``cpu`` or in ``float64``.

Both are pytest skips underneath, so the exit status treats them like skips; the plugin recognises them
by type, reports them under their own names, and points their report at the test that was skipped (the
``(path, line, reason)`` of a skip report), not at the line that raised.
"""

from __future__ import annotations

import pytest

# outcomes of the results file ("not run" is a terminal status only: such tests are "failed" in the file)
OUTCOMES = ("passed", "failed", "error", "missing", "unsupported", "skipped", "xfailed", "xpassed")


class Missing(pytest.skip.Exception):
    """Raised by the harness when the candidate lacks a needed feature."""


class Unsupported(pytest.skip.Exception):
    """Raised by the harness when the candidate declares it does not support a device, dtype or tier."""


class NotRun(pytest.skip.Exception):
    """Raised by the harness for every test of a candidate that could not be imported: one error for the
    candidate (its import error, in the terminal summary), its tests *not run* in the terminal and *failed*
    with that error in the results file, and the run's exit status 1."""


def missing(msg: str) -> "None":
    raise Missing(msg)


def unsupported(msg: str) -> "None":
    raise Unsupported(msg)


class ExampleTimeout(BaseException):
    """Raised between hypothesis examples once the test is past its timeout. A BaseException, so that
    hypothesis does not catch it and try the hanging candidate again (it fails the test at once)."""
