"""bpe: each distinct pre-token counted once, its frequency in the corpus ignored."""

from collections import Counter

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training_fast as train_module
from fmspec.candidates.mutants import patch, rebind

COMPONENT = "bpe"
CAUGHT_BY = ["test_train_merges_are_most_frequent", "test_train_ties_go_to_greater_pair",
             "test_train_matches_oracle_on_real_text"]


def distinct_pretokens(texts, specials):
    return Counter(dict.fromkeys(train_module.pretoken_counts(texts, specials), 1))


# the reference's fast trainer (bpe.train) calling the mutant's pretoken_counts (the module itself is untouched)
train = rebind(train_module.train, pretoken_counts=distinct_pretokens)

bpe = patch(ref, train=train)
