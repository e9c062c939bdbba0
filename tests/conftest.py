# torch is imported here, before any in-process pytester run: pytester drops the modules first imported
# inside a run when the run ends, and torch's C extension cannot be imported a second time.
import torch  # noqa: F401

import pytest

pytest_plugins = ["pytester"]

TEST_KEY = "fmspec test key"  # the results key of every run the project's tests make (fmspec/integrity.py)


@pytest.fixture(autouse=True)
def results_key(monkeypatch):
    """Every results file a test writes or reads is signed and verified with one known key, never the
    machine's own (~/.config/fmspec/results-key is neither read nor created by the tests)."""
    monkeypatch.setenv("FMSPEC_RESULTS_KEY", TEST_KEY)
    return TEST_KEY.encode()


@pytest.fixture(autouse=True)
def reference_cache(monkeypatch, tmp_path_factory):
    """The gpt suite's cached reference runs (suites/_gpt_helpers.py) go to one folder of this test run,
    never the user's ~/.cache/fmspec: computed once per run, read by every later process of the run."""
    monkeypatch.setenv("FMSPEC_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "fmspec-cache"))


def pytest_addoption(parser):
    parser.addoption("--mutant-seeds", default="", metavar="N,N,...",
                     help="tests/test_mutants.py: also run every mutant under random examples from each of these "
                          "seeds (--fmspec-hidden-seed), and report mutants caught only under some")
