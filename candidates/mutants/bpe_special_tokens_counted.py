"""bpe: training does not split out the special tokens: their bytes are counted and merged like text."""

import types

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training as train_module
from fmspec.candidates.mutants import patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_special_tokens_are_never_merged", "test_no_token_crosses_a_pretoken_boundary"]


def counts_with_specials(texts, specials):
    return train_module.pretoken_counts(texts, ())


# the reference trainer, its helper swapped (the module itself is untouched)
train = types.FunctionType(train_module.train.__code__, {**train_module.__dict__, "pretoken_counts": counts_with_specials}, "train",
                           train_module.train.__defaults__)

bpe = patch(ref, train=train)
