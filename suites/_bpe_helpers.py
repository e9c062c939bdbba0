"""Helpers for the bpe suite: test data, plain oracles written from the spec, HF ``tokenizers`` wiring,
and hypothesis strategies for corpora. Nothing here imports a candidate or the reference.

The oracles are deliberately naive (a full recount of every pair after every merge, a literal loop over
merge ranks): slow, short, and easy to check by eye against docs/spec/bpe.md.
"""

from __future__ import annotations

import functools
import sys
from collections import Counter
from pathlib import Path

from hypothesis import strategies as st

DATA = Path(__file__).resolve().parent / "data"
GPT2_DIR = DATA / "gpt2"
END = "</w>"
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------ pre-tokens
@functools.cache
def _gpt2_regex():
    import pytest

    regex = pytest.importorskip("regex")  # the spec's pattern needs \p{L} and \p{N}
    return regex.compile(GPT2_PATTERN)


def split_specials(text: str, specials) -> list[tuple[str, bool]]:
    """Scan left to right; at each position the longest special that starts there wins."""
    by_length = sorted(specials, key=len, reverse=True)
    out, plain, i = [], [], 0
    while i < len(text):
        hit = next((s for s in by_length if text.startswith(s, i)), None)
        if hit is None:
            plain.append(text[i])
            i += 1
            continue
        if plain:
            out.append(("".join(plain), False))
            plain = []
        out.append((hit, True))
        i += len(hit)
    if plain:
        out.append(("".join(plain), False))
    return out


def pretokens(text: str, specials=()) -> list[str]:
    """The pre-tokens of ``text`` in order; special tokens dropped."""
    out = []
    for piece, is_special in split_specials(text, specials):
        if not is_special:
            out += _gpt2_regex().findall(piece)
    return out


def pretoken_counts(text: str, specials=()) -> Counter:
    """{pre-token bytes: count}, in order of first occurrence."""
    return Counter(t.encode("utf-8") for t in pretokens(text, specials))


# ------------------------------------------------------------------------------------------ oracles
def pair_counts(words: dict[tuple, int]) -> dict[tuple, int]:
    """Every adjacent pair at every position, weighted; dict order = first occurrence."""
    counts: dict[tuple, int] = {}
    for symbols, freq in words.items():
        for pair in zip(symbols, symbols[1:]):
            counts[pair] = counts.get(pair, 0) + freq
    return counts


def apply_merge(symbols: tuple, pair: tuple) -> tuple:
    """Non-overlapping, left to right: (a, a, a) with (a, a) -> (aa, a)."""
    out, i = [], 0
    while i < len(symbols):
        if tuple(symbols[i:i + 2]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return tuple(out)


def occurrences(symbols: tuple, pair: tuple) -> int:
    """How many occurrences ``apply_merge`` replaces."""
    return len(symbols) - len(apply_merge(symbols, pair))


def byte_words(text: str, specials=()) -> dict[tuple, int]:
    """{pre-token as a tuple of one-byte tokens: count}."""
    words: dict[tuple, int] = {}
    for tok, n in pretoken_counts(text, specials).items():
        key = tuple(bytes([b]) for b in tok)
        words[key] = words.get(key, 0) + n
    return words


def merge_words(words: dict[tuple, int], pair: tuple) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for symbols, n in words.items():
        key = apply_merge(symbols, pair)
        out[key] = out.get(key, 0) + n
    return out


def recount_merges(words: dict[tuple, int], num_merges: int, pick) -> list[tuple]:
    """Up to ``num_merges`` merges: count every pair from scratch, merge ``pick(counts)``, repeat."""
    merges = []
    for _ in range(num_merges):
        counts = pair_counts(words)
        if not counts:
            break
        best = pick(counts)
        merges.append(best)
        words = merge_words(words, best)
    return merges


def greatest_of_most_frequent(counts: dict[tuple, int]) -> tuple:
    return max(counts, key=lambda p: (counts[p], p))


def first_of_most_frequent(counts: dict[tuple, int]) -> tuple:
    top = max(counts.values())
    return next(p for p, c in counts.items() if c == top)  # dict order = first occurrence


def naive_train(text: str, vocab_size: int, specials=()) -> list[tuple[bytes, bytes]]:
    """The spec's byte-level trainer, recounting everything at every step; ties to the greater pair."""
    return recount_merges(byte_words(text, specials), vocab_size - 256 - len(specials), greatest_of_most_frequent)


@functools.lru_cache(maxsize=1024)
def reachable_merges(text: str, specials: tuple[str, ...] = ()) -> int:
    """How many merges the spec's trainer learns on ``text`` before no pair is left (every pre-token one token)."""
    return len(recount_merges(byte_words(text, specials), sys.maxsize, greatest_of_most_frequent))


def reachable_word_merges(word_counts: dict[str, int]) -> int:
    """How many merges the lecture's trainer learns before every word is one symbol."""
    return len(naive_train_words(word_counts, sys.maxsize))


def naive_train_words(word_counts: dict[str, int], num_merges: int) -> list[tuple[str, str]]:
    """The lecture's trainer: characters + </w>, ties to the first occurrence."""
    return recount_merges(end_of_word_words(word_counts), num_merges, first_of_most_frequent)


def end_of_word_words(word_counts: dict[str, int]) -> dict[tuple, int]:
    """{"low": 5} -> {("l", "o", "w", "</w>"): 5}."""
    return {tuple(w) + (END,): n for w, n in word_counts.items()}


def naive_segment(symbols: tuple, merges) -> tuple:
    """The encoding rule, literally: while some adjacent pair is a merge, merge every occurrence of the
    one with the lowest rank."""
    rank = {}
    for i, pair in enumerate(merges):
        rank.setdefault(tuple(pair), i)
    while True:
        present = [p for p in zip(symbols, symbols[1:]) if p in rank]
        if not present:
            return symbols
        symbols = apply_merge(symbols, min(present, key=rank.__getitem__))


def naive_encode(text: str, vocab: dict[int, bytes], merges, specials=()) -> list[int]:
    ids = {tok: i for i, tok in vocab.items()}
    out = []
    for piece, is_special in split_specials(text, specials):
        if is_special:
            out.append(ids[piece.encode("utf-8")])
            continue
        for tok in _gpt2_regex().findall(piece):
            raw = tok.encode("utf-8")
            out += [ids[t] for t in naive_segment(tuple(bytes([b]) for b in raw), merges)]
    return out


# ------------------------------------------------------------------------------------------ HF tokenizers
@functools.cache
def _byte_table() -> dict[int, str]:
    """GPT-2's byte -> printable character table, built from its definition."""
    keep = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF]
    shifted = [b for b in range(256) if b not in keep]
    table = {b: chr(b) for b in keep}
    table.update({b: chr(0x100 + k) for k, b in enumerate(shifted)})
    return table


def gpt2_text(token: bytes) -> str:
    return "".join(_byte_table()[b] for b in token)


def hf_tokenizer(vocab: dict[int, bytes], merges, specials=()):
    """An HF ``tokenizers.Tokenizer`` with the same vocab, merges and special tokens (byte-level, GPT-2 regex)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    model = models.BPE(vocab={gpt2_text(t): i for i, t in vocab.items()},
                       merges=[(gpt2_text(a), gpt2_text(b)) for a, b in merges])
    tok = Tokenizer(model)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok


@functools.cache
def hf_gpt2():
    """HF ``tokenizers`` on GPT-2's own files, with <|endoftext|> as a special token."""
    return hf_from_files(str(GPT2_DIR / "vocab.json"), str(GPT2_DIR / "merges.txt"), (EOT,))


# ------------------------------------------------------------------------------------------ strategies
# few distinct letters, so that pairs repeat and runs like "aaaa" occur; some multi-byte characters
LETTERS = "aab" + "cé" + "ß"
SEPARATORS = [" ", " ", "\n", "  ", ", ", "'s ", ". ", "\n\n", " 12 ", "😀"]
SPECIALS = [EOT, "<|pad|>", EOT + EOT]


@st.composite
def corpora(draw, specials: bool = True, max_words: int = 30):
    """(text, special_tokens): words over a tiny alphabet, repeated with varied frequencies, joined by
    separators, with special tokens sprinkled in."""
    vocab = draw(st.lists(st.text(LETTERS, min_size=1, max_size=6), min_size=1, max_size=6, unique=True))
    picks = draw(st.lists(st.integers(0, len(vocab) - 1), min_size=1, max_size=max_words))
    chosen = draw(st.sampled_from([(), (EOT,), (EOT, "<|pad|>"), (EOT, EOT + EOT)])) if specials else ()
    parts = []
    for k, i in enumerate(picks):
        if k:
            sep = draw(st.sampled_from(SEPARATORS + list(chosen)))
            parts.append(sep)
        parts.append(vocab[i])
    return "".join(parts), chosen


@st.composite
def word_counts(draw):
    """{word: count} over a tiny alphabet, in a drawn order."""
    words = draw(st.lists(st.text("abcde", min_size=1, max_size=7), min_size=1, max_size=8, unique=True))
    counts = draw(st.lists(st.integers(1, 9), min_size=len(words), max_size=len(words)))
    return dict(zip(words, counts))


# Training runs within reach: the number of merges asked for is at most what the corpus allows, so training
# never runs out of pairs. Stopping early has tests of its own (test_*_stops_early_when_no_pair_is_left); a
# trainer that crashes there fails those, and each property test still reports what it checks.
@st.composite
def training_runs(draw, min_merges: int = 0, max_merges: int = 30, max_words: int = 30):
    """(text, special_tokens, vocab_size): a corpus of :func:`corpora` and a vocab_size that the spec's
    trainer reaches (256 + specials + at most as many merges as the corpus allows)."""
    text, specials = draw(corpora(max_words=max_words))
    reach = reachable_merges(text, specials)
    merges = draw(st.integers(min(min_merges, reach), min(max_merges, reach)), label="merges")
    return text, specials, 256 + len(specials) + merges


@st.composite
def word_runs(draw, max_merges: int = 15):
    """(word_counts, num_merges): word counts of :func:`word_counts` and at most as many merges as they allow."""
    counts = draw(word_counts())
    return counts, draw(st.integers(0, min(max_merges, reachable_word_merges(counts))), label="num_merges")


# any text, except lone surrogates (no UTF-8 form) and code points unassigned in Python's Unicode
# database (HF's regex engine and the regex module disagree about characters assigned since)
texts = st.text(st.characters(exclude_categories=["Cs", "Cn"]), max_size=40)
# texts to encode with a small trained vocabulary: any text, or text over the training alphabet (where the
# order in which merges apply matters)
probe_texts = st.one_of(texts, st.text(LETTERS + " '\n", max_size=40))


# ------------------------------------------------------------------------------------------ cached data
@functools.cache
def load_gpt2() -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """GPT-2's vocab and merges as bytes, read with the test's own byte table."""
    import json

    back = {c: b for b, c in _byte_table().items()}
    as_text = json.loads((GPT2_DIR / "vocab.json").read_text(encoding="utf-8"))
    vocab = {i: bytes(back[c] for c in tok) for tok, i in as_text.items()}
    merges = []
    for line in (GPT2_DIR / "merges.txt").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#version"):
            a, b = line.split(" ")
            merges.append((bytes(back[c] for c in a), bytes(back[c] for c in b)))
    return vocab, merges


@functools.cache
def naive_train_cached(name: str, chars: int | None, vocab_size: int, specials: tuple[str, ...]):
    return naive_train(read(name)[:chars], vocab_size, specials)


def hf_from_files(vocab_path: str, merges_path: str, specials=()):
    """HF ``tokenizers`` reading GPT-2 format files (byte-level, GPT-2 regex, the special tokens)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE.from_file(vocab_path, merges_path))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tok
