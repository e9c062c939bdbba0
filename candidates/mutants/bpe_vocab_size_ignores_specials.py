"""bpe: vocab_size counts only the bytes and the merges, so the special tokens push the vocabulary past it."""

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_vocab_is_bytes_specials_and_merges", "test_train_bad_arguments_raise"]


def train(text, vocab_size, special_tokens=()):
    return ref.train(text, vocab_size + len(special_tokens), special_tokens)


bpe = patch(ref, train=train)
