"""bpe: word-level and byte-level Byte Pair Encoding (spec: docs/spec/bpe.md; reference: reference/bpe/).

Oracles: the lecture's worked examples (exact), plain re-implementations of the spec in
``suites/_bpe_helpers.py`` (a full recount per merge, a literal rank loop), and HF ``tokenizers`` built
from the same vocab and merges, including the real GPT-2 vocabulary on real text.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fmspec.suites import _bpe_helpers as bh
from fmspec.suites import asserts as ah

pytestmark = pytest.mark.component("bpe")

F_TRAIN_WORDS = "bpe.train_words"
F_SEGMENT = "bpe.segment_word"
F_TRAIN = "bpe.train"
F_TOKENIZER = "bpe.Tokenizer"
F_FROM_FILES = "bpe.Tokenizer.from_files"
F_SAVE = "bpe.save"

# ------------------------------------------------------------------------------------ the lecture's data
LECTURE_WORDS = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
LECTURE_MERGES = [("e", "s"), ("es", "t"), ("est", "</w>"), ("l", "o"), ("lo", "w"), ("n", "e"), ("ne", "w"),
                  ("new", "est</w>"), ("low", "</w>"), ("w", "i")]
LECTURE_VOCAB = {"l", "o", "w", "</w>", "e", "r", "n", "s", "t", "i", "d",
                 "es", "est", "est</w>", "lo", "low", "ne", "new", "newest</w>", "low</w>", "wi"}
LECTURE_SEGMENTS = {"low": ["low</w>"], "lower": ["low", "e", "r", "</w>"], "newest": ["newest</w>"],
                    "widest": ["wi", "d", "est</w>"]}
# "Imagine we learned these merges, best at top to worst at bottom"
WALKTHROUGH_MERGES = [tuple(m.split()) for m in [
    "A b", "a s", "e r", "s er", "w as", "Ab was", "Abwas ser", "B e", "a n", "d l", "h an", "n g", "u ng",
    "Be han", "dl ung", "Behan dlung", "A n", "a g", "l ag"]]
WALKTHROUGH_WORD = "Abwasserbehandlungsanlage"
# the slides' states: characters, after the first merge, after the second, and the final ten subtokens
WALKTHROUGH_STATES = {
    0: "A b w a s s e r b e h a n d l u n g s a n l a g e </w>",
    1: "Ab w a s s e r b e h a n d l u n g s a n l a g e </w>",
    2: "Ab w as s e r b e h a n d l u n g s a n l a g e </w>",
    19: "Abwasser b e han dlung s an lag e </w>",
}

# byte level: the same kind of corpus, pre-tokenized GPT-2 style (the space joins the word after it)
BYTE_EXAMPLE = "low low low low low lower lower widest widest widest newest newest newest newest newest newest"
BYTE_EXAMPLE_MERGES = [(b"s", b"t"), (b"e", b"st"), (b"o", b"w"), (b"l", b"ow"), (b"w", b"est"), (b"n", b"e"),
                       (b"ne", b"west"), (b" ", b"newest")]

# pieces of text that make chunk boundaries interesting: contractions, whitespace runs, parts of specials
STREAM_PIECES = list("ab é'ls\n") + ["'ll", "  ", "\n\n", "<|endoftext|>", "<|pad|>", "<|end", "oftext|>", "😀"]
REAL_TEXTS = ["german.txt", "address.txt", "tinystories_sample.txt"]
ROUND_TRIP_EXAMPLES = ["", " ", "a", "e\u0301t\u00e9", "\U0001F469\u200d\U0001F469\u200d\U0001F467", "\U0001F1E9\U0001F1EA",
                       "日本語のテキスト", "\x00\x1f\x7f", "  \n\t \r\n", "I'll've   don't", "Straße 12½ ١٢٣",
                       "a<|endoftext|>b", "<|endoftext|><|endoftext|><|endoftext|>", "\u200b\ufeff\ufffd"]


# ---------------------------------------------------------------------------------------- call wrappers
def train_words(candidate, word_counts, num_merges, *, call=ah.call):
    where = ah.snippet(F_TRAIN_WORDS, word_counts, num_merges)
    merges = call(candidate.bpe.train_words, F_TRAIN_WORDS, word_counts, num_merges)
    assert isinstance(merges, list), f"merges: expected a list, got {type(merges).__name__} [{where}]"
    return [tuple(m) for m in merges]


def segment_word(candidate, word, merges):
    symbols = ah.call(candidate.bpe.segment_word, F_SEGMENT, word, merges)
    return list(symbols)


def train(candidate, text, vocab_size, specials=(), *, call=ah.call):
    where = ah.snippet(F_TRAIN, text, vocab_size, special_tokens=list(specials))
    out = call(candidate.bpe.train, F_TRAIN, text, vocab_size, special_tokens=list(specials))
    assert isinstance(out, tuple) and len(out) == 2, f"expected (vocab, merges), got {ah.describe(out)} [{where}]"
    vocab, merges = out
    assert isinstance(vocab, dict), f"vocab: expected a dict, got {type(vocab).__name__} [{where}]"
    merges = [tuple(m) for m in merges]
    bad = [m for m in merges if len(m) != 2 or not all(isinstance(t, bytes) for t in m)]
    assert not bad, f"merges must be (bytes, bytes) pairs, got {bad[0]!r} [{where}]"
    return vocab, merges


def tokenizer(candidate, vocab, merges, specials=()):
    return ah.call(candidate.bpe.Tokenizer, F_TOKENIZER, vocab, merges, list(specials))


def encode(tok, text):
    ids = ah.call(tok.encode, "bpe.Tokenizer.encode", text)
    return list(ids)


def base_vocab(merges, specials=()) -> dict[int, bytes]:
    """Bytes 0..255, then the specials, then one token per merge: the spec's layout, built by the test."""
    vocab = {i: bytes([i]) for i in range(256)}
    for s in specials:
        vocab[len(vocab)] = s.encode("utf-8")
    for a, b in merges:
        vocab[len(vocab)] = a + b
    return vocab


_GPT2_TOKENIZERS: dict[int, tuple[type, object]] = {}
_GPT2_FROM_FILES: dict[int, tuple[type, object]] = {}


def gpt2_tokenizer(candidate):
    """The candidate's Tokenizer on GPT-2's vocabulary, built once per Tokenizer class (50k merges take a while)."""
    cls = candidate.bpe.Tokenizer
    if id(cls) not in _GPT2_TOKENIZERS:
        vocab, merges = bh.load_gpt2()
        _GPT2_TOKENIZERS[id(cls)] = (cls, tokenizer(candidate, vocab, merges, [bh.EOT]))  # holding cls keeps its id
    return _GPT2_TOKENIZERS[id(cls)][1]


def call_past_the_last_pair(fn, name: str, *args, **kwargs):
    """``ah.call`` for a trainer asked for more merges than its corpus allows: an exception is the failure
    reported (a trainer that crashes once no pair is left), not an error of the test."""
    __tracebackhide__ = True
    try:
        return ah.call(fn, name, *args, **kwargs)
    except NotImplementedError:
        raise  # a missing function stays missing
    except Exception as exc:
        raise AssertionError(f"training raised {type(exc).__name__}: {exc} once no pair was left, instead of "
                             f"stopping early with the merges it found [{ah.snippet(name, *args, **kwargs)}]") from exc


def assert_each_merge_most_frequent(words: dict[tuple, int], merges, where: str) -> dict[tuple, int]:
    """Replay ``merges`` on ``words`` ({symbols: count}): each is a most frequent pair at its step, recounted
    from scratch (any tie rule). The words after the last merge."""
    __tracebackhide__ = True
    for step, pair in enumerate(merges):
        pairs = bh.pair_counts(words)
        top = max(pairs.values(), default=0)
        assert pairs.get(pair, 0) == top, (f"merge {step} {pair!r} occurs {pairs.get(pair, 0)} times; the most "
                                           f"frequent pair occurs {top} times [{where}]")
        words = bh.merge_words(words, pair)
    return words


# ============================================================================ word level: the lecture
@pytest.mark.smoke
@pytest.mark.needs(F_TRAIN_WORDS)
def test_lecture_example_merges(candidate):
    """Seed 004: {low: 5, lower: 2, newest: 6, widest: 3}, 10 merges, ties to the first occurrence.

    Step 1: (e, s), (s, t) and (t, </w>) all occur 9 times; (e, s) comes first, in "n e w e s t </w>".
    Step 6: (n, e), (e, w) and (w, est</w>) occur 6 times each; (n, e) comes first.
    """
    merges = train_words(candidate, dict(LECTURE_WORDS), 10)
    ah.assert_equal(merges, LECTURE_MERGES, name="merges", where=ah.snippet(F_TRAIN_WORDS, LECTURE_WORDS, 10))


@pytest.mark.needs(F_TRAIN_WORDS, F_SEGMENT)
def test_lecture_example_vocabulary(candidate):
    """The final slide: vocabulary = the 11 initial symbols + 10 merges, and the words' final segmentation."""
    merges = train_words(candidate, dict(LECTURE_WORDS), 10)
    where = ah.snippet(F_TRAIN_WORDS, LECTURE_WORDS, 10)
    initial = {c for w in LECTURE_WORDS for c in w} | {"</w>"}
    vocab = initial | {a + b for a, b in merges}
    ah.assert_equal(sorted(vocab), sorted(LECTURE_VOCAB), name="vocabulary", where=where)
    assert len(vocab) == len(initial) + 10, f"vocabulary has {len(vocab)} symbols, expected 11 + 10 [{where}]"
    for word, expected in LECTURE_SEGMENTS.items():
        ah.assert_equal(segment_word(candidate, word, merges), expected, name=f"segments of {word!r}",
                        where=ah.snippet(F_SEGMENT, word, merges))


@pytest.mark.smoke
@pytest.mark.needs(F_SEGMENT)
@pytest.mark.parametrize("k", sorted(WALKTHROUGH_STATES), ids=lambda k: f"{k}merges")
def test_lecture_walkthrough(candidate, k):
    """Seed 004: "Abwasserbehandlungsanlage" with the slide's 19 merges; the state after the first k merges.

    All 19: Abwasser b e han dlung s an lag e </w>, "ten subtokens" (B e, Be han, Behan dlung and A n
    never apply: the word has a lower-case b and no "A n").
    """
    merges = WALKTHROUGH_MERGES[:k]
    ah.assert_equal(segment_word(candidate, WALKTHROUGH_WORD, merges), WALKTHROUGH_STATES[k].split(),
                    name="segments", where=ah.snippet(F_SEGMENT, WALKTHROUGH_WORD, merges))


# ============================================================================ word level: properties
# explicit cases a random draw finds only rarely: ties at the first step, runs ("aaaa" holds (a, a) three
# times, merges to aa aa), a word that is one symbol plus </w>, and the last merge the words allow
WORD_RUNS = [
    ({"ab": 1, "ba": 1}, 3),  # (a, b), (b, </w>), (b, a), (a, </w>) tie at 1: (a, b) comes first
    ({"ba": 2, "ab": 2}, 2),  # the same, the other word first
    ({"aaaa": 1, "bcbc": 1}, 4),  # (a, a) 3, (b, c) 2 and (c, b) 1 at every position
    ({"aaa": 3, "a": 5}, 3),  # (a, </w>) 8 before (a, a) 6; then (a, a) ties (a, a</w>) at 3, comes first
    ({"a": 1}, 1),  # one merge, then nothing is left
]


def word_examples(test):
    """``test`` with the explicit cases of WORD_RUNS (as its ``run`` argument)."""
    for run in reversed(WORD_RUNS):
        test = example(run=run)(test)
    return test


@pytest.mark.needs(F_TRAIN_WORDS)
@given(run=bh.word_runs())
@word_examples
def test_word_merges_are_most_frequent(candidate, run):
    """Replaying the merges, each is a most frequent pair at its step (recounted from scratch, any tie rule);
    as many merges as asked (the corpus always allows them here)."""
    counts, num_merges = run
    where = ah.snippet(F_TRAIN_WORDS, counts, num_merges)
    merges = train_words(candidate, dict(counts), num_merges)
    ah.assert_equal(len(merges), num_merges, name="number of merges", where=where)
    assert_each_merge_most_frequent(bh.end_of_word_words(counts), merges, where)


@pytest.mark.needs(F_TRAIN_WORDS)
@given(counts=bh.word_counts(), beyond=st.integers(1, 10))
@example(counts={"a": 1}, beyond=1)  # one symbol plus </w>: one merge, then no pair
@example(counts={"ab": 2, "b": 1}, beyond=5)
@example(counts={"aaaa": 1}, beyond=3)
def test_word_training_stops_early_when_no_pair_is_left(candidate, counts, beyond):
    """Asked for more merges than the words allow, training stops when every word is one symbol and returns
    the merges it found: each a most frequent pair at its step, and no pair left after the last."""
    num_merges = bh.reachable_word_merges(counts) + beyond
    where = ah.snippet(F_TRAIN_WORDS, counts, num_merges)
    merges = train_words(candidate, dict(counts), num_merges, call=call_past_the_last_pair)
    assert len(merges) < num_merges, f"{len(merges)} merges, but the words allow fewer than {num_merges} [{where}]"
    words = assert_each_merge_most_frequent(bh.end_of_word_words(counts), merges, where)
    left = bh.pair_counts(words)
    assert not left, f"stopped after {len(merges)} merges with pairs left, {next(iter(left))!r} among them [{where}]"


@pytest.mark.needs(F_TRAIN_WORDS)
@given(run=bh.word_runs())
@word_examples
def test_word_ties_go_to_first_occurrence(candidate, run):
    """Oracle: the lecture's rule, recounting at every step; ties to the pair seen first (words in the
    mapping's order, symbols left to right)."""
    counts, num_merges = run
    expected = bh.naive_train_words(counts, num_merges)
    ah.assert_equal(train_words(candidate, dict(counts), num_merges), expected, name="merges",
                    where=ah.snippet(F_TRAIN_WORDS, counts, num_merges))


@pytest.mark.needs(F_TRAIN_WORDS, F_SEGMENT)
@given(run=bh.word_runs(), new=st.text("abcdef", min_size=1, max_size=10))
@example(run=({"aaaa": 1, "bcbc": 1}, 4), new="aaaaa")  # runs: aa aa a, not a aa aa
@example(run=({"ab": 1, "ba": 1}, 3), new="abab")
def test_segment_word_applies_merges_by_rank(candidate, run, new):
    """segment_word equals the literal rule (merge the lowest-ranked pair present, all occurrences, until
    none is left), on the training words and on a new word; the pieces spell the word plus </w>."""
    counts, num_merges = run
    merges = train_words(candidate, dict(counts), num_merges)
    for word in [*counts, new]:
        where = ah.snippet(F_SEGMENT, word, merges)
        got = segment_word(candidate, word, merges)
        ah.assert_equal(got, list(bh.naive_segment(tuple(word) + (bh.END,), merges)), name="segments", where=where)
        ah.assert_equal("".join(got), word + bh.END, name="joined segments", where=where)


WORD_LEVEL_BAD = {  # id: (feature, args, the argument the error names)
    "train_words-empty": (F_TRAIN_WORDS, ({}, 3), "word_counts"),
    "train_words-not-a-mapping": (F_TRAIN_WORDS, (["low", "lower"], 3), "word_counts"),
    "train_words-negative-merges": (F_TRAIN_WORDS, ({"low": 5}, -1), "num_merges"),
    "train_words-negative-count": (F_TRAIN_WORDS, ({"low": -2}, 3), "word_counts"),
    "segment_word-not-a-str": (F_SEGMENT, (42, []), "word"),
}


@pytest.mark.parametrize("feature, args, argument", [
    pytest.param(*case, marks=pytest.mark.needs(case[0]), id=name) for name, case in WORD_LEVEL_BAD.items()])
def test_word_level_bad_arguments_raise(candidate, feature, args, argument):
    """An empty corpus, a list instead of a mapping, negative counts or merges, a non-str word: ValueError or
    TypeError whose message names the argument (a whole word), so that an incidental error passes no more."""
    fn = candidate.resolve(feature)
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b"):
        fn(*args)


# ============================================================================ byte level: training
@pytest.mark.smoke
@pytest.mark.needs(F_TRAIN)
def test_train_worked_example(candidate):
    """Pre-tokens " newest" x6, " low" x4, " widest" x3, " lower" x2, "low" x1.

    Step 1: (e, s) and (s, t) occur 9 times; ties go to the greater pair of byte strings, (b"s", b"t").
    Step 3: (l, o) and (o, w) occur 7 times: (b"o", b"w"). Step 5: ( , n), (n, e), (e, w), (w, est) and
    ( , low) occur 6 times: (b"w", b"est") has the greatest first token.
    """
    vocab_size = 256 + len(BYTE_EXAMPLE_MERGES)
    _, merges = train(candidate, BYTE_EXAMPLE, vocab_size)
    ah.assert_equal(merges, BYTE_EXAMPLE_MERGES, name="merges", where=ah.snippet(F_TRAIN, BYTE_EXAMPLE, vocab_size))


@pytest.mark.needs(F_TRAIN)
def test_train_counts_pairs_at_every_position(candidate):
    """"aaaaa" holds (a, a) four times, " xyxyxy" holds (x, y) three times: (a, a) is merged first (counted
    without overlap it would be 2, and (x, y) would win)."""
    text = "aaaaa xyxyxy"
    _, merges = train(candidate, text, 258)
    ah.assert_equal(merges, [(b"a", b"a"), (b"x", b"y")], name="merges", where=ah.snippet(F_TRAIN, text, 258))


# explicit cases a random draw finds only rarely, (text, special_tokens, vocab_size), each within reach
TRAIN_RUNS = [
    ("ab ba", (), 257),  # (a, b), ( , b), (b, a) tie at 1: the greatest is (b, a), the first (a, b), the least ( , b)
    ("aaa aaa", (), 259),  # "aaa" holds (a, a) twice: (a, a) 4 times, then aa a -> aaa, then ( , aaa)
    ("aaaa xyxyx", (), 258),  # (a, a) 3 at every position, 2 without overlap, where (y, x) 2 would win
    ("ab<|endoftext|>ab<|endoftext|><|endoftext|>ba", (bh.EOT, bh.EOT + bh.EOT), 260),  # specials against text
    ("é ßé éß", (), 262),  # two-byte characters: ties between pairs of their bytes
]


def training_examples(test):
    """``test`` with the explicit cases of TRAIN_RUNS (as its ``run`` argument)."""
    for run in reversed(TRAIN_RUNS):
        test = example(run=run)(test)
    return test


@pytest.mark.needs(F_TRAIN)
@given(run=bh.training_runs())
@training_examples
def test_train_merges_are_most_frequent(candidate, run):
    """Replaying the merges on the pre-tokens, each is a most frequent pair at its step (recounted from
    scratch at every position, weighted by frequency; any tie rule)."""
    text, specials, vocab_size = run
    where = ah.snippet(F_TRAIN, text, vocab_size, special_tokens=specials)
    _, merges = train(candidate, text, vocab_size, specials)
    assert_each_merge_most_frequent(bh.byte_words(text, specials), merges, where)


@pytest.mark.needs(F_TRAIN)
@given(run=bh.training_runs())
@training_examples
def test_train_ties_go_to_greater_pair(candidate, run):
    """Oracle: the spec's trainer (full recount per merge, ties to the lexicographically greater pair of byte
    strings) gives the same merges, in the same order."""
    text, specials, vocab_size = run
    expected = bh.naive_train(text, vocab_size, specials)
    _, merges = train(candidate, text, vocab_size, specials)
    ah.assert_equal(merges, expected, name="merges", where=ah.snippet(F_TRAIN, text, vocab_size, special_tokens=specials))


@pytest.mark.needs(F_TRAIN)
@pytest.mark.parametrize("name, chars, vocab_size, specials", [
    ("corpus.en.txt", 20000, 320, ()),
    ("tinystories_sample.txt", None, 300, (bh.EOT,)),
], ids=["corpus-en-320", "tinystories-300"])
def test_train_matches_oracle_on_real_text(candidate, name, chars, vocab_size, specials):
    """Oracle on real text: the same merges as the spec's trainer (where incremental count updates go wrong)."""
    text = bh.read(name)[:chars]
    expected = bh.naive_train_cached(name, chars, vocab_size, specials)
    _, merges = train(candidate, text, vocab_size, specials)
    ah.assert_equal(merges, expected, name="merges", where=ah.snippet(F_TRAIN, f"<{name}[:{chars}]>", vocab_size,
                                                                       special_tokens=list(specials)))


@pytest.mark.needs(F_TRAIN)
@given(run=bh.training_runs())
@training_examples
def test_vocab_is_bytes_specials_and_merges(candidate, run):
    """len(vocab) = 256 + specials + merges = vocab_size (the corpus allows that many merges here); its
    tokens are the 256 single bytes, each special token's UTF-8, and each merge's concatenation, all distinct."""
    text, specials, vocab_size = run
    where = ah.snippet(F_TRAIN, text, vocab_size, special_tokens=specials)
    vocab, merges = train(candidate, text, vocab_size, specials)
    ah.assert_equal(len(merges), vocab_size - 256 - len(specials), name="number of merges", where=where)
    ah.assert_equal(len(vocab), vocab_size, name="len(vocab)", where=where)
    expected = sorted([bytes([b]) for b in range(256)] + [s.encode() for s in specials] + [a + b for a, b in merges])
    ah.assert_equal(sorted(vocab.values()), expected, name="sorted vocab tokens", where=where)
    assert len(set(vocab.values())) == len(vocab), f"vocab holds a token twice [{where}]"


@pytest.mark.needs(F_TRAIN)
@given(corpus=bh.corpora(), beyond=st.integers(1, 30))
@example(corpus=("a", ()), beyond=1)  # no pair from the start
@example(corpus=("ab ab ab", ()), beyond=5)  # (a, b), then ( , ab): two merges
@example(corpus=("aaa<|endoftext|>aaa", (bh.EOT,)), beyond=1)  # (a, a), then (aa, a); the special is no pair
def test_train_stops_early_when_no_pair_is_left(candidate, corpus, beyond):
    """vocab_size beyond what the corpus can reach: training stops once every pre-token is one token and
    returns the merges it found (each a most frequent pair at its step, no pair left after the last) and a
    vocab of 256 + specials + those merges."""
    text, specials = corpus
    vocab_size = 256 + len(specials) + bh.reachable_merges(text, specials) + beyond
    where = ah.snippet(F_TRAIN, text, vocab_size, special_tokens=specials)
    vocab, merges = train(candidate, text, vocab_size, specials, call=call_past_the_last_pair)
    assert len(vocab) < vocab_size, f"len(vocab)={len(vocab)}, but the corpus allows fewer than {vocab_size} [{where}]"
    words = assert_each_merge_most_frequent(bh.byte_words(text, specials), merges, where)
    left = bh.pair_counts(words)
    assert not left, f"stopped after {len(merges)} merges with pairs left, {next(iter(left))!r} among them [{where}]"
    ah.assert_equal(len(vocab), 256 + len(specials) + len(merges), name="len(vocab)", where=where)


@pytest.mark.needs(F_TRAIN)
@given(run=bh.training_runs(min_merges=1))
@training_examples
def test_no_token_crosses_a_pretoken_boundary(candidate, run):
    """Every merged token lies inside one pre-token of the training text (specials cut out first), so no
    token spans two words, and none holds part of a special token that does not occur outside specials."""
    text, specials, vocab_size = run
    where = ah.snippet(F_TRAIN, text, vocab_size, special_tokens=specials)
    _, merges = train(candidate, text, vocab_size, specials)
    pretokens = list(bh.pretoken_counts(text, specials))
    for a, b in merges:
        assert any(a + b in p for p in pretokens), f"merged token {a + b!r} is inside no pre-token [{where}]"


@pytest.mark.needs(F_TRAIN)
def test_special_tokens_are_never_merged(candidate):
    """A corpus made mostly of one special token: its bytes are never counted, so nothing of it is merged."""
    text = ("<|endoftext|>" * 30 + "ab ab ") * 3
    _, merges = train(candidate, text, 259, [bh.EOT])  # the two merges the text allows
    where = ah.snippet(F_TRAIN, text, 259, special_tokens=[bh.EOT])
    ah.assert_equal(merges, [(b"a", b"b"), (b" ", b"ab")], name="merges", where=where)


@pytest.mark.needs(F_TRAIN, F_TOKENIZER)
@given(run=bh.training_runs(min_merges=1, max_merges=12, max_words=25))
@example(run=("aaaa aaa", (), 259))  # (a, a) counted 5 times, replaced 3 times
@example(run=TRAIN_RUNS[3])
@settings(max_examples=10)  # one Tokenizer per merge prefix: an example costs about 10 ordinary ones
def test_each_merge_lowers_token_count_by_its_occurrences(candidate, run):
    """Encoding the training pre-tokens with the first k merges and then k + 1, the token count drops by the
    number of occurrences merge k + 1 replaces: its pair count when its two tokens differ; in a run like
    "aaaa", where (a, a) is counted 3 times, by 2 (left to right, no overlap)."""
    text, specials, vocab_size = run
    vocab, merges = train(candidate, text, vocab_size, specials)
    counts = bh.pretoken_counts(text, specials)
    segments = {p: tuple(bytes([b]) for b in p) for p in counts}
    for k, pair in enumerate(merges):
        tok = tokenizer(candidate, vocab, merges[:k + 1], specials)
        where = ah.snippet("bpe.Tokenizer(vocab, merges[:k + 1]).encode", k=k, pair=pair)
        after = {p: tuple(vocab[i] for i in encode(tok, p.decode("utf-8"))) for p in counts}
        drop = sum(n * (len(segments[p]) - len(after[p])) for p, n in counts.items())
        replaced = sum(n * bh.occurrences(segments[p], pair) for p, n in counts.items())
        ah.assert_equal(drop, replaced, name=f"token count drop of merge {k} {pair!r}", where=where)
        if pair[0] != pair[1]:
            ah.assert_equal(drop, bh.pair_counts({segments[p]: n for p, n in counts.items()}).get(pair, 0),
                            name=f"token count drop of merge {k} {pair!r} vs its pair count", where=where)
        segments = after


@pytest.mark.needs(F_TRAIN)
def test_train_reads_a_path(candidate, tmp_path):
    """A path (os.PathLike) is read as UTF-8 text: the same result as passing the text."""
    text = bh.read("tinystories_sample.txt")
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    expected = train(candidate, text, 280, [bh.EOT])
    ah.assert_equal(train(candidate, path, 280, [bh.EOT]), expected, name="(vocab, merges)",
                    where=ah.snippet(F_TRAIN, path, 280, special_tokens=[bh.EOT]))


@pytest.mark.needs(F_TRAIN)
def test_same_merges_when_called_twice(candidate):
    """No state kept between calls: training twice on the same text gives the same vocab and merges."""
    text = bh.read("german.txt")
    first = train(candidate, text, 300)
    ah.assert_equal(train(candidate, text, 300), first, name="second call", where=ah.snippet(F_TRAIN, text, 300))


TRAIN_BAD = {  # id: (args, the argument the error names)
    "vocab-below-256": (("some text", 255), "vocab_size"),
    "vocab-below-256-plus-specials": (("some text", 256, [bh.EOT]), "vocab_size"),
    "empty-corpus": (("", 300), "text"),
    "bytes-corpus": ((b"some bytes", 300), "text"),
    "int-corpus": ((12345, 300), "text"),
    "float-vocab-size": (("some text", 300.5), "vocab_size"),
    "empty-special": (("some text", 300, [""]), "special_tokens"),
    "duplicate-specials": (("some text", 300, [bh.EOT, bh.EOT]), "special_tokens"),
}


@pytest.mark.needs(F_TRAIN)
@pytest.mark.parametrize("args, argument", list(TRAIN_BAD.values()), ids=list(TRAIN_BAD))
def test_train_bad_arguments_raise(candidate, args, argument):
    """vocab_size below 256 + specials, an empty corpus, a corpus neither str nor path, a float vocab_size,
    an empty or a repeated special token: ValueError or TypeError whose message names the argument."""
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b"):
        candidate.bpe.train(*args)


# ============================================================================ byte level: encoding
@pytest.mark.smoke
@pytest.mark.needs(F_TOKENIZER)
def test_encode_rank_order_example(candidate):
    """Merges (b, c) then (a, b): "abc" encodes as a + bc. The lower-ranked (b, c) applies first although
    (a, b) is further left; after it no (a, b) is left, and (a, bc) is no merge."""
    merges = [(b"b", b"c"), (b"a", b"b")]
    vocab = base_vocab(merges)
    tok = tokenizer(candidate, vocab, merges)
    ah.assert_equal(encode(tok, "abc"), [ord("a"), 256], name="ids",
                    where=ah.snippet("bpe.Tokenizer(bytes + [bc, ab], [(b, c), (a, b)]).encode", "abc"))


# explicit (corpus, extra merges, text to encode): the empty string; specials against text, back to back and
# overlapping (<|endoftext|><|endoftext|> is a special itself); runs where the order of merges matters; and
# many merges to apply, which the random corpora (few words, few merges) seldom give: the byte-level lecture
# corpus with every merge it allows (15), then its words in another order, 2 to 6 merges each, joined by runs
# of spaces and newlines. An encoder that skips a merge now and then (BPE-dropout left on) gets some word of
# them wrong; one that splits a whitespace run other than GPT-2's way (its last space joins the next word:
# "  low" is " " + " low", \s+(?!\S)) loses the " low" and " newest" merges.
ENCODE_CASES = [
    (("ab ab", (bh.EOT,)), 3, ""),
    (("ab<|endoftext|>ab ba", (bh.EOT, bh.EOT + bh.EOT)), 4,
     "<|endoftext|>ab<|endoftext|><|endoftext|><|endoftext|>ba<|"),
    (("aaaa aaa", ()), 4, "aaaaaaa aaaaa"),
    ((BYTE_EXAMPLE, ()), 15, "newest newest  newest\n  newest newest  newest widest\n\n widest  widest lower  lower\n"
                             "  low low  low low\n  low"),
]


def encode_examples(test):
    """``test`` with the explicit cases of ENCODE_CASES (as its ``corpus``, ``extra`` and ``text`` arguments)."""
    for corpus, extra, text in reversed(ENCODE_CASES):
        test = example(corpus=corpus, extra=extra, text=text)(test)
    return test


@pytest.mark.needs(F_TOKENIZER)
@given(corpus=bh.corpora(), extra=st.integers(0, 30), text=bh.probe_texts)
@encode_examples
def test_encode_applies_merges_by_rank(candidate, corpus, extra, text):
    """Oracle: the literal rule (in each pre-token, merge the lowest-ranked pair present, all occurrences,
    until none is left; specials as single ids), on the training text and on any text."""
    train_text, specials = corpus
    merges = bh.naive_train(train_text, 256 + len(specials) + extra, specials)
    vocab = base_vocab(merges, specials)
    tok = tokenizer(candidate, vocab, merges, specials)
    for t in (train_text, text):
        ah.assert_equal(encode(tok, t), bh.naive_encode(t, vocab, merges, specials), name="ids",
                        where=ah.snippet("bpe.Tokenizer(vocab, merges, specials).encode", t, specials=specials))


@pytest.mark.needs(F_TOKENIZER)
@given(corpus=bh.corpora(), extra=st.integers(0, 30), text=bh.probe_texts)
@encode_examples
def test_encode_matches_hf_tokenizers(candidate, corpus, extra, text):
    """Oracle: HF ``tokenizers`` (BPE model, ByteLevel pre-tokenizer, the same special tokens) built from the
    same vocab and merges gives the same ids."""
    hf = pytest.importorskip("tokenizers")
    del hf
    train_text, specials = corpus
    merges = bh.naive_train(train_text, 256 + len(specials) + extra, specials)
    vocab = base_vocab(merges, specials)
    tok, ref = tokenizer(candidate, vocab, merges, specials), bh.hf_tokenizer(vocab, merges, specials)
    for t in (train_text, text):
        ah.assert_equal(encode(tok, t), ref.encode(t).ids, name="ids",
                        where=ah.snippet("bpe.Tokenizer(vocab, merges, specials).encode", t, specials=specials))


@pytest.mark.smoke
@pytest.mark.needs(F_TOKENIZER)
@pytest.mark.parametrize("name", REAL_TEXTS + ["corpus.en.txt"])
def test_encode_matches_hf_on_gpt2_vocab(candidate, name):
    """Oracle on a real vocabulary: GPT-2's 50257 tokens and 50000 merges, on real English and German text
    (and <|endoftext|> separated stories), give the same ids as HF ``tokenizers``; decode inverts."""
    pytest.importorskip("tokenizers")
    text = bh.read(name)[:30000]
    tok = gpt2_tokenizer(candidate)
    where = ah.snippet("bpe.Tokenizer(gpt2_vocab, gpt2_merges, ['<|endoftext|>']).encode", f"<{name}>")
    ids = encode(tok, text)
    ah.assert_equal(ids, bh.hf_gpt2().encode(text).ids, name="ids", where=where)
    ah.assert_equal(ah.call(tok.decode, "bpe.Tokenizer.decode", ids), text, name="decode(encode(text))", where=where)


@pytest.mark.needs(F_TOKENIZER)
@given(text=bh.texts)
@example(text="")
@example(text="Straße über 日本語<|endoftext|>😀")  # words whose merges apply out of left-to-right order
def test_encode_matches_hf_on_gpt2_vocab_any_text(candidate, text):
    """The GPT-2 vocabulary on any text (accents, scripts, emoji, control characters, whitespace runs)."""
    pytest.importorskip("tokenizers")
    ah.assert_equal(encode(gpt2_tokenizer(candidate), text), bh.hf_gpt2().encode(text).ids, name="ids",
                    where=ah.snippet("bpe.Tokenizer(gpt2_vocab, gpt2_merges, ['<|endoftext|>']).encode", text))


@pytest.mark.needs(F_TOKENIZER)
def test_special_tokens_are_single_ids(candidate):
    """Each special token is one id, never split nor merged into; of overlapping specials the longest that
    starts first wins ("<|endoftext|><|endoftext|>" is one token when it is a special itself)."""
    specials = [bh.EOT, bh.EOT + bh.EOT, "<|pad|>"]
    merges = bh.naive_train("the cat<|pad|> the hat", 270, specials)
    vocab = base_vocab(merges, specials)
    tok = tokenizer(candidate, vocab, merges, specials)
    ids = {t: i for i, t in vocab.items()}
    text = "the<|endoftext|><|endoftext|><|endoftext|>cat<|pad|><|pa"
    where = ah.snippet("bpe.Tokenizer(vocab, merges, specials).encode", text, specials=specials)
    got = encode(tok, text)
    head = [ids[t] for t in bh.naive_segment((b"t", b"h", b"e"), merges)]
    middle = [ids[(bh.EOT + bh.EOT).encode()], ids[bh.EOT.encode()]]
    ah.assert_equal(got[:len(head) + 2], head + middle, name="ids", where=where)
    assert ids[b"<|pad|>"] in got, f"<|pad|> is not one id in {got} [{where}]"
    tail = [vocab[i] for i in got[got.index(ids[b"<|pad|>"]) + 1:]]
    ah.assert_equal(b"".join(tail), b"<|pa", name="bytes after <|pad|>", where=where)


@pytest.mark.needs(F_TOKENIZER)
@pytest.mark.parametrize("text", ROUND_TRIP_EXAMPLES, ids=range(len(ROUND_TRIP_EXAMPLES)))
def test_decode_inverts_encode_examples(candidate, text):
    """decode(encode(s)) == s: empty, combining marks, ZWJ emoji, flags, CJK, control characters, whitespace
    runs, contractions, digits of other scripts, specials back to back."""
    tok = gpt2_tokenizer(candidate)
    where = ah.snippet("bpe.Tokenizer(gpt2_vocab, gpt2_merges, ['<|endoftext|>'])", text)
    ah.assert_equal(ah.call(tok.decode, "bpe.Tokenizer.decode", encode(tok, text)), text, name="decode(encode(s))", where=where)


@pytest.mark.needs(F_TOKENIZER)
@given(corpus=bh.corpora(), extra=st.integers(0, 30), text=st.text(max_size=80))
@encode_examples
def test_decode_inverts_encode(candidate, corpus, extra, text):
    """decode(encode(s)) == s for any str without lone surrogates (Unicode scalar values), on a small
    trained vocabulary with special tokens."""
    train_text, specials = corpus
    merges = bh.naive_train(train_text, 256 + len(specials) + extra, specials)
    tok = tokenizer(candidate, base_vocab(merges, specials), merges, specials)
    for t in (text, train_text + text):
        where = ah.snippet("bpe.Tokenizer(vocab, merges, specials)", t, specials=specials)
        ah.assert_equal(ah.call(tok.decode, "bpe.Tokenizer.decode", encode(tok, t)), t, name="decode(encode(s))", where=where)


@pytest.mark.needs(F_TOKENIZER)
@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\ud83d\ude00"], ids=["high", "low-inside", "pair-as-two"])
def test_lone_surrogate_raises_value_error(candidate, text):
    """A lone surrogate has no UTF-8 form: encode raises ValueError (UnicodeEncodeError is one) rather
    than guess; a surrogate *pair* written as two code points is two lone surrogates."""
    tok = tokenizer(candidate, base_vocab([]), [])
    with pytest.raises(ValueError):
        tok.encode(text)


@pytest.mark.needs(F_TOKENIZER)
@given(raw=st.lists(st.integers(0, 255), max_size=24))
# random bytes seldom hold a well-formed multi-byte character, or a truncated one of more than a byte, and
# those are what a decoder gets wrong when it decodes the tokens (here one byte each) apart rather than
# their bytes joined: characters of 2, 3 and 4 bytes, each split across tokens, must come back whole ...
@example(raw=list("é€😀".encode("utf-8")))
# ... and a truncated 3-byte and 4-byte sequence (each one maximal invalid subpart: one U+FFFD, not one a byte)
@example(raw=[0xE2, 0x82, 0x41, 0xF0, 0x9F, 0x98])
def test_decode_replaces_invalid_utf8(candidate, raw):
    """Any byte sequence decodes as Python's UTF-8 decoder with errors="replace" does: each maximal invalid
    subpart becomes one U+FFFD."""
    tok = tokenizer(candidate, base_vocab([]), [])
    expected = bytes(raw).decode("utf-8", errors="replace")
    ah.assert_equal(ah.call(tok.decode, "bpe.Tokenizer.decode", raw), expected, name="decode",
                    where=ah.snippet("bpe.Tokenizer(bytes_vocab, []).decode", raw))


@pytest.mark.needs(F_TOKENIZER)
@given(corpus=bh.corpora(), extra=st.integers(0, 30), text=st.lists(st.sampled_from(STREAM_PIECES), max_size=30).map("".join),
       cuts=st.lists(st.integers(0, 1 << 16), max_size=12))
@example(corpus=("ab ab", (bh.EOT,)), extra=3, text="<|endoftext|>ab<|endoftext|>",  # cuts inside both specials,
         cuts=[0, 0, 8, 8, 9, 21, 21])  # and empty chunks (a cut repeated, one at the start)
@example(corpus=("I'll", ()), extra=2, text="'ll  \n\n ab", cuts=[2, 3, 7, 9])  # a contraction, whitespace runs
def test_encode_iterable_any_chunking(candidate, corpus, extra, text, cuts):
    """Encoding the text as an iterable of chunks, cut anywhere (inside a word, a contraction, a whitespace
    run or a special token; empty chunks too), yields the ids of encoding it whole."""
    train_text, specials = corpus
    merges = bh.naive_train(train_text, 256 + len(specials) + extra, specials)
    tok = tokenizer(candidate, base_vocab(merges, specials), merges, specials)
    whole = train_text + text
    cuts = sorted(c % (len(whole) + 1) for c in cuts)  # positions 0..len(whole)
    chunks = [whole[i:j] for i, j in zip([0] + cuts, cuts + [len(whole)])]
    where = ah.snippet("bpe.Tokenizer(vocab, merges, specials).encode_iterable", chunks, specials=specials)
    got = list(ah.call(tok.encode_iterable, "bpe.Tokenizer.encode_iterable", iter(chunks)))
    ah.assert_equal(got, encode(tok, whole), name="ids", where=where)


STREAM_LINE = "the cat's hat,  <|endoftext|>the mat\n"
STREAM_LIMIT = 1 << 20  # characters: an encoder that streams yields its first ids long before


@pytest.mark.needs(F_TOKENIZER)
def test_encode_iterable_streams(candidate):
    """encode_iterable yields ids as the chunks arrive, not after reading them all: on an endless input (a
    generator that fails once it has given 1 MiB, so that joining it all fails instead of hanging) the first
    ids come while it is still being read, and they are those of encoding the text whole."""
    specials = [bh.EOT]
    merges = bh.naive_train(STREAM_LINE * 3, 280, specials)
    tok = tokenizer(candidate, base_vocab(merges, specials), merges, specials)
    where = ah.snippet("bpe.Tokenizer(vocab, merges, specials).encode_iterable", f"<endless {STREAM_LINE!r}>",
                       specials=specials)
    pulled = 0

    def endless():
        nonlocal pulled
        while True:
            if pulled * len(STREAM_LINE) >= STREAM_LIMIT:
                raise AssertionError(f"encode_iterable read {pulled} lines ({pulled * len(STREAM_LINE)} characters) "
                                     f"of an endless input without yielding an id: it does not stream [{where}]")
            pulled += 1
            yield STREAM_LINE

    expected = encode(tok, STREAM_LINE * 200)[:1000]
    got = list(itertools.islice(ah.call(tok.encode_iterable, "bpe.Tokenizer.encode_iterable", endless()), len(expected)))
    ah.assert_equal(got, expected, name="the first ids", where=where)


@pytest.mark.needs(F_TOKENIZER)
@pytest.mark.parametrize("name", REAL_TEXTS)
def test_encode_iterable_reads_a_file(candidate, name, tmp_path):
    """An open text file (an iterable of lines) encodes like its whole text, on the GPT-2 vocabulary."""
    text = bh.read(name)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    tok = gpt2_tokenizer(candidate)
    with open(path, encoding="utf-8", newline="") as f:
        got = list(ah.call(tok.encode_iterable, "bpe.Tokenizer.encode_iterable", f))
    ah.assert_equal(got, encode(tok, text), name="ids", where=ah.snippet("bpe.Tokenizer(gpt2...).encode_iterable", f"<open {name}>"))


@pytest.mark.needs(F_TOKENIZER)
def test_same_ids_when_called_twice(candidate):
    """No state kept between calls (a cache of pre-tokens included): encoding twice gives the same ids."""
    tok = gpt2_tokenizer(candidate)
    text = bh.read("german.txt")
    first = encode(tok, text)
    ah.assert_equal(encode(tok, text), first, name="second call", where=ah.snippet("bpe.Tokenizer(gpt2...).encode", text))


TOKENIZER_BAD = {  # id: (method, argument value, the argument the error names)
    "encode-bytes": ("encode", b"bytes", "text"),
    "encode-none": ("encode", None, "text"),
    "decode-unknown-id": ("decode", [0, 999999], "ids"),
    "decode-negative-id": ("decode", [-1], "ids"),
    "decode-str-id": ("decode", ["a"], "ids"),
}


@pytest.mark.needs(F_TOKENIZER)
@pytest.mark.parametrize("method, arg, argument", list(TOKENIZER_BAD.values()), ids=list(TOKENIZER_BAD))
def test_tokenizer_bad_arguments_raise(candidate, method, arg, argument):
    """encode of a non-str, decode of an id outside the vocabulary or of a non-int: ValueError or TypeError
    whose message names the argument."""
    tok = tokenizer(candidate, base_vocab([]), [])
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b"):
        getattr(tok, method)(arg)


@pytest.mark.needs(F_TOKENIZER)
@pytest.mark.parametrize("specials", [[""], [bh.EOT, "<|pad|>", bh.EOT]], ids=["empty", "duplicate"])
def test_tokenizer_bad_special_tokens_raise(candidate, specials):
    """An empty or a repeated special token: ValueError or TypeError naming special_tokens."""
    with pytest.raises((ValueError, TypeError), match=r"\bspecial_tokens\b"):
        candidate.bpe.Tokenizer(base_vocab([]), [], specials)


# ============================================================================ files
@pytest.mark.needs(F_FROM_FILES)
def test_from_files_reads_gpt2(candidate):
    """Tokenizer.from_files on GPT-2's own vocab.json and merges.txt (HF's byte-to-unicode text form)
    encodes like HF ``tokenizers`` reading the same files."""
    pytest.importorskip("tokenizers")
    cls = candidate.bpe.Tokenizer
    if id(cls) not in _GPT2_FROM_FILES:  # built once per Tokenizer class
        _GPT2_FROM_FILES[id(cls)] = (cls, ah.call(cls.from_files, F_FROM_FILES, str(bh.GPT2_DIR / "vocab.json"),
                                                  str(bh.GPT2_DIR / "merges.txt"), [bh.EOT]))
    tok = _GPT2_FROM_FILES[id(cls)][1]
    for name in REAL_TEXTS:
        text = bh.read(name)
        ah.assert_equal(encode(tok, text), bh.hf_gpt2().encode(text).ids, name="ids",
                        where=ah.snippet(F_FROM_FILES, "gpt2/vocab.json", "gpt2/merges.txt", [bh.EOT]) + f".encode(<{name}>)")


BYTES_VOCAB_JSON = json.dumps({bh.gpt2_text(bytes([b])): b for b in range(256)})  # the 256 bytes, GPT-2's format
BAD_FILES = {  # id: (vocab.json text, merges.txt text, the argument the error names)
    "vocab-not-an-object": ('["a", "b"]', "#version: 0.2\n", "vocab_path"),
    "merge-of-three-tokens": (BYTES_VOCAB_JSON, "#version: 0.2\na b c\n", "merges_path"),
}


@pytest.mark.needs(F_FROM_FILES)
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_from_files_bad_files_raise(candidate, tmp_path, case):
    """A vocab.json that is not an object token -> id, a merges.txt line that is not two tokens: ValueError or
    TypeError naming the file's argument (vocab_path or merges_path)."""
    vocab_text, merges_text, argument = BAD_FILES[case]
    (tmp_path / "vocab.json").write_text(vocab_text, encoding="utf-8")
    (tmp_path / "merges.txt").write_text(merges_text, encoding="utf-8")
    with pytest.raises((ValueError, TypeError), match=rf"\b{argument}\b"):
        candidate.bpe.Tokenizer.from_files(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))


SAVE_CASES = {
    "tinystories-eot": (bh.read("tinystories_sample.txt"), (bh.EOT,), 300),
    "german": (bh.read("german.txt"), (), 300),
    "bytes-and-spaces": ("a\tb\x00c \n\n  d\u00a0e \u0120\u0100 ÿÿ ÿÿ 😀😀 \r\n" * 3, (bh.EOT, "<|pad|>"), 280),
}


@pytest.mark.needs(F_SAVE, F_FROM_FILES)
@pytest.mark.parametrize("case", sorted(SAVE_CASES))
def test_save_then_load_round_trip(candidate, tmp_path, case):
    """save() writes GPT-2's format: Tokenizer.from_files reads it back to the same encoding, and so does
    HF ``tokenizers`` (BPE.from_file). Tokens hold control bytes, spaces, non-breaking spaces and the
    characters GPT-2's table uses for shifted bytes (Ġ, Ā), so a save that skips the table cannot pass."""
    pytest.importorskip("tokenizers")
    train_text, specials, vocab_size = SAVE_CASES[case]
    merges = bh.naive_train(train_text, vocab_size, specials)
    vocab = base_vocab(merges, specials)
    paths = (str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    ah.call(candidate.bpe.save, F_SAVE, vocab, merges, *paths)
    loaded = ah.call(candidate.bpe.Tokenizer.from_files, F_FROM_FILES, *paths, list(specials))
    hf = bh.hf_from_files(*paths, specials)
    probe = bh.read("address.txt")[:300] + "\u0120\u0100\x00 ÿ"
    for t in (train_text, probe):
        where = ah.snippet(F_SAVE, vocab, merges, *paths) + f"; from_files(...).encode({t[:40]!r}...)"
        expected = bh.naive_encode(t, vocab, merges, specials)
        ah.assert_equal(encode(loaded, t), expected, name="ids after from_files", where=where)
        ah.assert_equal(hf.encode(t).ids, expected, name="ids of HF reading the saved files", where=where)
