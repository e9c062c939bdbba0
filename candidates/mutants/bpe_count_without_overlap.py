"""bpe: pairs counted without overlap during training ("aaa" holds (a, a) once, as str.count would say)."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training as train_module
from fmspec.candidates.mutants import patch, rebind

COMPONENT = "bpe"
CAUGHT_BY = ["test_train_counts_pairs_at_every_position",
             "test_train_ties_go_to_greater_pair"]


def get_stats(ids, counts=None, weight=1):
    counts = {} if counts is None else counts
    i = 0
    while i + 1 < len(ids):
        pair = (ids[i], ids[i + 1])
        counts[pair] = counts.get(pair, 0) + weight
        i += 2 if ids[i] == ids[i + 1] else 1  # skips the overlapping occurrence
    return counts


# the reference's readable trainer (a recount per merge) calling the mutant's get_stats
train = rebind(train_module.train, get_stats=get_stats)

bpe = patch(ref, train=train)
