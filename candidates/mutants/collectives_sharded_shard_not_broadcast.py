"""collectives: ShardedOptimizer steps each rank's own shard and never sends it: every rank keeps stale copies of the other shards."""

import fmspec.reference.collectives as ref
from fmspec.candidates.mutants import edited

COMPONENT = "collectives"
CAUGHT_BY = ["test_sharded_optimizer_matches_adamw"]

collectives = edited(ref, ("flat = broadcast(self.comm, flat, root=r)", "pass"))
