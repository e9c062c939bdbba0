"""The reference's two byte-level BPE trainers learn the same vocabulary and merges.

``reference/bpe/training.py`` is the readable trainer (every pair counted again after every merge, as the
lecture); ``reference/bpe/training_fast.py`` keeps the counts up to date (a pair index and a lazy heap) and
is the one ``bpe.train`` exports, so the suite and the benchmarks time it. The suite judges every
candidate's ``bpe.train`` against its own oracle (``suites/_bpe_helpers.py``); this file holds the fast
trainer to the readable one, on drawn corpora (runs like "aaaa", ties, special tokens, any Unicode) and on
the real texts of ``suites/data``, so that the readable trainer stays what the reference does.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fmspec.candidates.mutants import edit_source
from fmspec.reference.bpe import training, training_fast
from fmspec.suites import _bpe_helpers as bh
from fmspec.suites import asserts as ah

EOT, PAD = bh.EOT, "<|pad|>"


def corpus_with_specials() -> str:
    """corpus.en with <|endoftext|> after every line and <|pad|> glued before every comma (special tokens
    inside lines and at their ends: about 1000 and 1300 of them)."""
    return bh.read("corpus.en.txt").replace("\n", EOT + "\n").replace(" , ", PAD + " , ")


REAL_CORPORA = {  # id: (text, vocab_size, special tokens)
    "corpus-en-500": (lambda: bh.read("corpus.en.txt"), 500, ()),
    "corpus-en-specials-500": (corpus_with_specials, 500, (EOT, PAD)),
    "tinystories-eot-400": (lambda: bh.read("tinystories_sample.txt"), 400, (EOT,)),
    "german-400": (lambda: bh.read("german.txt"), 400, ()),  # runs out of pairs before 400
    "address-400": (lambda: bh.read("address.txt"), 400, ()),
}


def assert_same_training(fast, text: str, vocab_size: int, specials=()) -> None:
    """``fast(text, vocab_size, specials)`` gives the readable trainer's merges and vocab, ids included."""
    __tracebackhide__ = True
    where = ah.snippet("training_fast.train", text if len(text) < 200 else f"<{len(text)} characters>", vocab_size,
                       special_tokens=list(specials))
    expected_vocab, expected_merges = training.train(text, vocab_size, list(specials))
    vocab, merges = fast(text, vocab_size, list(specials))
    ah.assert_equal(merges, expected_merges, name="merges", where=where)
    ah.assert_equal(sorted(vocab.items()), sorted(expected_vocab.items()), name="sorted vocab items", where=where)


@given(corpus=bh.corpora(), extra=st.integers(0, 60))
@example(corpus=("ab ba", ()), extra=3)  # a three-way tie at the first step, then running out of pairs
@example(corpus=("aaaa aaa aaaaa", ()), extra=10)  # runs: a word holding the merged pair twice
@example(corpus=("ab<|endoftext|>ab<|endoftext|><|endoftext|>ba", (EOT, EOT + EOT)), extra=5)  # specials against text
@example(corpus=("a", ()), extra=1)  # no pair at all
def test_same_training_on_drawn_corpora(corpus, extra):
    """Words over a tiny alphabet (runs, overlaps, many ties), with special tokens; up to 60 merges, so
    that training often runs out of pairs."""
    text, specials = corpus
    assert_same_training(training_fast.train, text, 256 + len(specials) + extra, specials)


@given(text=bh.texts.filter(bool), extra=st.integers(0, 40))
def test_same_training_on_any_text(text, extra):
    """Any Unicode text (multi-byte characters, control characters, whitespace runs)."""
    assert_same_training(training_fast.train, text, 256 + extra)


@pytest.mark.parametrize("case", sorted(REAL_CORPORA))
def test_same_training_on_real_corpora(case):
    """The texts shipped with the suite: 244 merges on corpus.en, with and without special tokens."""
    text, vocab_size, specials = REAL_CORPORA[case]
    assert_same_training(training_fast.train, text(), vocab_size, specials)


# bugs a fast trainer can have, as edits of its source, each with a corpus where it changes the merges
FAST_TRAINER_BUGS = {
    "stale-entry-dropped": ([("if 0 < n < -neg:", "if False:")], "address.txt", ()),
    "repeated-pair-updated-once": ([("if times == 1:", "if True:")], "address.txt", ()),
    "tie-to-smaller-pair": ([("tuple(255 - x for x in token) + (256,)", "tuple(token) + (-1,)")], "address.txt", ()),
    "specials-counted": ([("pretoken_counts([text], specials)", "pretoken_counts([text], ())")],
                         "tinystories_sample.txt", (EOT,)),
}


@pytest.mark.parametrize("bug", sorted(FAST_TRAINER_BUGS))
def test_a_fast_trainer_with_a_bug_differs(bug):
    """The comparison can fail: the fast trainer with one bug (a stale heap entry dropped instead of pushed
    back with its current count, a word holding the pair twice updated as if once, ties to the smaller
    pair, special tokens counted) differs from the readable one on a real text."""
    edits, name, specials = FAST_TRAINER_BUGS[bug]
    train = edit_source(training_fast, edits).train
    with pytest.raises(AssertionError, match="merges"):
        assert_same_training(train, bh.read(name), 400, specials)
