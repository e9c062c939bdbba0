# torch is imported here, before any in-process pytester run: pytester drops the modules first imported
# inside a run when the run ends, and torch's C extension cannot be imported a second time.
import torch  # noqa: F401

pytest_plugins = ["pytester"]


def pytest_addoption(parser):
    parser.addoption("--mutant-seeds", default="", metavar="N,N,...",
                     help="tests/test_mutants.py: also run every mutant under random examples from each of these "
                          "seeds (--fmspec-hidden-seed), and report mutants caught only under some")
