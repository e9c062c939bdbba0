"""bpe: training does not split out the special tokens: their bytes are counted and merged like text."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training_fast as train_module
from fmspec.candidates.mutants import patch, rebind

COMPONENT = "bpe"
CAUGHT_BY = ["test_special_tokens_are_never_merged", "test_no_token_crosses_a_pretoken_boundary"]


def counts_with_specials(texts, specials):
    return train_module.pretoken_counts(texts, ())


# the reference's fast trainer (bpe.train) calling the mutant's pretoken_counts (the module itself is untouched)
train = rebind(train_module.train, pretoken_counts=counts_with_specials)

bpe = patch(ref, train=train)
