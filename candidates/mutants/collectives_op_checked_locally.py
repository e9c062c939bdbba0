"""collectives: the op is checked on each rank before the ranks compare arguments: a rank with a bad op raises alone and the others wait for it forever."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_bad_arguments_raise_on_every_rank"]

collectives = edited(ref, ("    everyone = comm.all_gather_object(mine)\n",
                           "    if op is not None and op not in OPS:\n"
                           "        raise ValueError(f\"{name}: op must be one of {', '.join(OPS)}; got {op!r}\")\n"
                           "    everyone = comm.all_gather_object(mine)\n"))
