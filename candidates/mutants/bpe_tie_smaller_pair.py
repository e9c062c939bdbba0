"""bpe: byte-level ties between equally frequent pairs go to the lexicographically smaller pair."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training_fast as train_module
from fmspec.candidates.mutants import patch, rebind

COMPONENT = "bpe"
CAUGHT_BY = ["test_train_worked_example", "test_train_ties_go_to_greater_pair", "test_train_matches_oracle_on_real_text"]


def ascending_key(token: bytes) -> tuple[int, ...]:
    return tuple(token) + (-1,)  # heapq pops the smallest: now the smaller pair wins a tie


# the reference's fast trainer (bpe.train) calling the mutant's heap_key (the module itself is untouched)
train = rebind(train_module.train, heap_key=ascending_key)

bpe = patch(ref, train=train)
