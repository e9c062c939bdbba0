"""collectives: DDP expects a gradient for every trainable parameter: a bucket holding a layer no rank used never completes, so no gradient is averaged."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_ddp_unused_parameters_do_not_hang"]

collectives = edited(ref, ("self._members = [[p for p in bucket if id(p) in used] for bucket in self.buckets]",
                           "self._members = [list(bucket) for bucket in self.buckets]"))
