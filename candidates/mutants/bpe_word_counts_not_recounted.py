"""bpe: word-level pair counts taken once before the loop, not recounted after each merge (only the merged pair is dropped)."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.words as words_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = [
    "test_lecture_example_merges",
    "test_lecture_example_vocabulary",
    "test_word_merges_are_most_frequent",
    "test_word_ties_go_to_first_occurrence",
]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("    for _ in range(num_merges):\n"
     "        stats: dict[tuple[str, str], int] = {}\n"
     "        for symbols, freq in zip(words, freqs):\n"
     "            get_stats(symbols, stats, freq)",
     "    stats: dict[tuple[str, str], int] = {}\n"  # counted once, before the loop
     "    for symbols, freq in zip(words, freqs):\n"
     "        get_stats(symbols, stats, freq)\n"
     "    for _ in range(num_merges):"),
    ("        merges.append(pair)\n", "        merges.append(pair)\n        del stats[pair]\n"),
]

bpe = patch(ref, train_words=edit_source(words_module, EDITS).train_words)
