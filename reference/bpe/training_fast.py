"""Byte-level BPE training, fast: the speed reference (``bpe.train`` is this one).

It learns exactly the merges of ``training.py`` (read that first: it is the readable version, the lecture's
recount of every pair after every merge), and ``tests/test_bpe_trainers.py`` holds the two equal on random
and real corpora; a change here that makes them differ is a bug here. Same rules: pairs counted at every
adjacent position, weighted by the pre-token's count; the most frequent pair merged, ties to the
lexicographically greater pair of byte strings; occurrences replaced left to right without overlap;
special tokens and pre-token boundaries never crossed. Here speed rules: within 2x of HF ``tokenizers``'
single-threaded trainer (``benchmarks/bpe-cpu.md``), where the recount takes 35x longer at vocab 500 and
150x at vocab 2000 (corpus.en, 0.13 MB).

A recount of every pair after every merge costs O(corpus) per merge. This trainer keeps the counts up to
date instead: an index from each pair to the words that hold it, so a merge only revisits those words,
and a lazy max-heap of (count, pair) entries: a pair whose count rises gets a fresh entry; an entry whose
count is no longer current is dropped when it surfaces (or pushed back with the lower current count).

**Representation.** A word is a ``str`` with one character per token: token id ``i`` is the character
``symbol(i)`` (``chr(i)``, the surrogate block skipped), so a byte-level word starts as its bytes decoded
as Latin-1 (b" the" -> " the"). A pair is then a 2-character string, and merging (a, b) into ``ab`` in a
word is ``word.replace(a + b, ab)``, which replaces left to right without overlap (``merge`` of
``pairs.py``, in C). The ids are those of ``training.py``: bytes, then specials, then merges in order.
"""

from __future__ import annotations

import heapq
import os
from collections import defaultdict
from collections.abc import Sequence
from operator import add

from fmspec.reference.bpe.pretokenize import pretoken_counts
from fmspec.reference.bpe.training import base_vocab, check_arguments

SURROGATES = 0xD800  # code points 0xD800..0xDFFF are not characters a str can hold on its own everywhere


def symbol(i: int) -> str:
    """Token id -> its one-character symbol: ``chr(i)``, ids from 0xD800 on shifted past the surrogates."""
    return chr(i if i < SURROGATES else i + 0x800)


def heap_key(token: bytes) -> tuple[int, ...]:
    """A key that sorts byte strings in *reverse* order, so that heapq (a min-heap) pops the greater pair first.

    b"ab" -> (158, 157, 256): every byte complemented, then 256, which sorts a proper prefix (b"a") after
    its extensions (b"ab"), as b"a" < b"ab".
    """
    return tuple(255 - x for x in token) + (256,)


def word_pairs(word: str) -> "map[str]":
    """Every adjacent pair, at every position, as 2-character strings: "aaa" -> "aa", "aa"."""
    return map(add, word, word[1:])


def train(text: str | os.PathLike, vocab_size: int, special_tokens: Sequence[str] = ()
          ) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Learn a byte-level BPE vocabulary of ``vocab_size`` tokens: ``(vocab, merges)``."""
    text, specials = check_arguments(text, vocab_size, special_tokens)
    vocab = base_vocab(specials)  # id -> bytes
    token = {symbol(i): tok for i, tok in vocab.items()}  # symbol -> its bytes
    keys = {c: heap_key(tok) for c, tok in token.items()}

    counts = pretoken_counts([text], specials)  # {b" the": 812, ...}
    words = [tok.decode("latin-1") for tok in counts]  # byte x -> symbol(x) = chr(x)
    freqs = list(counts.values())

    # pair -> count, and pair -> indices of the words holding it (a superset: entries go stale, harmlessly)
    pair_counts: defaultdict[str, int] = defaultdict(int)
    where: defaultdict[str, set[int]] = defaultdict(set)
    for w, (word, freq) in enumerate(zip(words, freqs)):
        for pair in word_pairs(word):
            pair_counts[pair] += freq
            where[pair].add(w)
    heap = [(-n, keys[p[0]], keys[p[1]], p) for p, n in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    while len(vocab) < vocab_size:
        # the most frequent pair, ties to the greater pair: the first heap entry that is still current
        while heap:
            neg, ka, kb, p = heapq.heappop(heap)
            n = pair_counts.get(p, 0)
            if n == -neg:
                break
            if 0 < n < -neg:  # the count fell since: the entry goes back with the current count
                heapq.heappush(heap, (-n, ka, kb, p))
        else:
            break  # no pair left
        new = len(vocab)
        ab = symbol(new)
        vocab[new] = token[ab] = token[p[0]] + token[p[1]]
        keys[ab] = heap_key(token[ab])
        merges.append((token[p[0]], token[p[1]]))

        grown = set()  # pairs whose count rose need a fresh heap entry; falls are caught lazily above
        for w in where.pop(p):
            old = words[w]
            times = old.count(p)  # occurrences without overlap: the ones the merge replaces
            if not times:
                continue  # a stale index entry: the pair left this word earlier
            freq = freqs[w]
            merged = words[w] = old.replace(p, ab)
            if times == 1:
                # only the pairs next to the occurrence change: (x, a) (a, b) (b, y) -> (x, ab) (ab, y)
                j = old.find(p)
                born = []
                if j > 0:
                    pair_counts[old[j - 1:j + 1]] -= freq
                    born.append(merged[j - 1:j + 1])
                if j + 2 < len(old):
                    pair_counts[old[j + 1:j + 3]] -= freq
                    born.append(merged[j:j + 2])
            else:  # rare: recount the word's pairs
                for pair in word_pairs(old):
                    pair_counts[pair] -= freq
                born = word_pairs(merged)
            for pair in born:
                pair_counts[pair] += freq
                grown.add(pair)
                where[pair].add(w)
        del pair_counts[p]  # every occurrence is gone
        for pair in grown:
            heapq.heappush(heap, (-pair_counts[pair], keys[pair[0]], keys[pair[1]], pair))
    return vocab, merges
