"""collectives: ShardedOptimizer builds every rank's optimizer over all the parameters: right values (the broadcast overwrites them with the same), the state replicated N times."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_sharded_optimizer_state_is_divided"]

collectives = edited(ref, ("self.optimizer = optimizer_class(mine, **defaults) if mine else None",
                           "self.optimizer = optimizer_class(self.params, **defaults)"))
