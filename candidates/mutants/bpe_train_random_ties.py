"""bpe: byte-level ties between equally frequent pairs broken by a random key per token, not by the pairs' bytes."""

import random

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training_fast as train_module
from fmspec.candidates.mutants import patch, rebind

COMPONENT = "bpe"
CAUGHT_BY = [
    "test_same_merges_when_called_twice",
    "test_train_matches_oracle_on_real_text",
    "test_train_ties_go_to_greater_pair",
]
# test_train_worked_example and test_train_reads_a_path fail too, but in about one run in a hundred the random
# keys happen to give the right merges (or the same twice): not listed, so the meta-test cannot flake


def random_key(token: bytes) -> tuple[float]:
    return (random.random(),)  # any order among equals will do, or so it seems


# the reference's fast trainer (bpe.train) calling the mutant's heap_key (the module itself is untouched)
train = rebind(train_module.train, heap_key=random_key)

bpe = patch(ref, train=train)
