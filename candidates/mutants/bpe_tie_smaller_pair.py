"""bpe: byte-level ties between equally frequent pairs go to the lexicographically smaller pair."""

import types

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training as train_module
from fmspec.candidates.mutants import patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_train_worked_example", "test_train_ties_go_to_greater_pair", "test_train_matches_oracle_on_real_text"]


def ascending_key(token: bytes) -> tuple[int, ...]:
    return tuple(token) + (-1,)  # heapq pops the smallest: now the smaller pair wins a tie


# the reference trainer, its helper swapped (the module itself is untouched)
train = types.FunctionType(train_module.train.__code__, {**train_module.__dict__, "heap_key": ascending_key}, "train",
                           train_module.train.__defaults__)

bpe = patch(ref, train=train)
