"""collectives: DDP's no_sync() changes nothing: every backward all-reduces; right values (averaging is linear), but the traffic that accumulation exists to save."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_ddp_no_sync_accumulates"]

collectives = edited(ref, ("before, self._sync = self._sync, False", "before = self._sync"))
