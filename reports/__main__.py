"""``python -m reports``: build the HTML report, gate CI on a policy, export grade and CI formats."""

import sys

from fmspec.reports.cli import main

sys.exit(main())
