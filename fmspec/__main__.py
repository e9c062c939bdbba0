"""``python -m fmspec``: the ``fmspec`` command."""

import sys

from fmspec.cli import main

sys.exit(main())
