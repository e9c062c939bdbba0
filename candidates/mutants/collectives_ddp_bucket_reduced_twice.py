"""collectives: DDP all-reduces every bucket again when backward ends, besides the overlapped launch: right values, twice the traffic."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_ddp_each_bucket_reduced_once"]

collectives = edited(ref, ("            flat, start = future.result(), 0",
                           "            future.result()\n"
                           "            flat, start = all_reduce(self.comm, torch.cat([p.grad.reshape(-1) for p in members]), \"mean\"), 0"))
