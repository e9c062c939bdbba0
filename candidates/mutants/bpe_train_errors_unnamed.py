"""bpe: train's bad-argument errors say what is wrong but not which argument ("need at least 257 tokens", "nothing to train on")."""

import os

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training_fast as train_module
from fmspec.candidates.mutants import patch, rebind

COMPONENT = "bpe"
CAUGHT_BY = ["test_train_bad_arguments_raise"]


def check_arguments(text, vocab_size, special_tokens):
    if isinstance(text, os.PathLike):
        with open(text, encoding="utf-8") as f:
            text = f.read()
    if not isinstance(text, str):
        raise TypeError(f"expected a str or an os.PathLike, got {type(text).__name__}")
    specials = tuple(special_tokens)
    if "" in specials or len(set(specials)) != len(specials):
        raise ValueError(f"special tokens must be distinct and non-empty, got {list(specials)!r}")
    if not isinstance(vocab_size, int):
        raise TypeError(f"expected an int, got {type(vocab_size).__name__}")
    if vocab_size < 256 + len(specials):
        raise ValueError(f"need at least {256 + len(specials)} tokens, got {vocab_size}")
    if not text:
        raise ValueError("nothing to train on")
    return text, specials


# the reference's fast trainer (bpe.train) calling the mutant's check_arguments (the module itself is untouched)
train = rebind(train_module.train, check_arguments=check_arguments)

bpe = patch(ref, train=train)
