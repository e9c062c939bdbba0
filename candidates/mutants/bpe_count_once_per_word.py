"""bpe: each distinct pre-token counted once, its frequency in the corpus ignored."""

import types
from collections import Counter

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training as train_module
from fmspec.candidates.mutants import patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_train_merges_are_most_frequent", "test_train_ties_go_to_greater_pair",
             "test_train_matches_oracle_on_real_text"]


def distinct_pretokens(texts, specials):
    return Counter(dict.fromkeys(train_module.pretoken_counts(texts, specials), 1))


# the reference trainer, its helper swapped (the module itself is untouched)
train = types.FunctionType(train_module.train.__code__, {**train_module.__dict__, "pretoken_counts": distinct_pretokens}, "train",
                           train_module.train.__defaults__)

bpe = patch(ref, train=train)
