# torch is imported here, before any in-process pytester run: pytester drops the modules first imported
# inside a run when the run ends, and torch's C extension cannot be imported a second time.
import torch  # noqa: F401

pytest_plugins = ["pytester"]
