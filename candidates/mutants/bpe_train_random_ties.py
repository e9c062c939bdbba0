"""bpe: byte-level ties between equally frequent pairs broken by a random key per token, not by the pairs' bytes."""

import random
import types

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training as train_module
from fmspec.candidates.mutants import patch

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


# the reference trainer, its helper swapped (the module itself is untouched)
train = types.FunctionType(train_module.train.__code__, {**train_module.__dict__, "heap_key": random_key}, "train",
                           train_module.train.__defaults__)

bpe = patch(ref, train=train)
