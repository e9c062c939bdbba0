"""fmspec: a conformance and benchmark suite for the building blocks of foundation models.

One import namespace over the repository's folders:

================== ===================================================================================
``fmspec``         the harness: the pytest plugin, candidate loader, results recorder, trust checks,
                   hypothesis profiles, benchmark helpers, and the ``fmspec`` command (``fmspec.cli``)
``fmspec.reference``  the reference implementation, one module per component
``fmspec.suites``  the conformance suites (``test_*.py``) and benchmarks (``bench_*.py``)
``fmspec.reports`` results files to HTML reports, CI gates and grade exports
``fmspec.candidates``  example candidates: ``reference``, ``torch_native``, ``template``
================== ===================================================================================
"""

from __future__ import annotations

# The components of the contract, in the order the docs present them: the one list the suites, the
# candidates and the reports read.
COMPONENTS = ("autodiff", "layers", "bpe", "attention", "flash", "checkpoint", "lora", "finetune", "quant", "vit",
              "posenc", "accounting", "collectives", "gpt")


def __getattr__(name: str):
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("fmspec")
        except PackageNotFoundError:
            return "unknown"
    raise AttributeError(name)
