"""``python -m fmspec.reports``: the same as the ``fmspec`` command (report, gate, export, run, list)."""

import sys

from fmspec.cli import main

sys.exit(main())
