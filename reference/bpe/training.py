"""Byte-level BPE training, GPT-2 style (Radford et al., 2019; the algorithm of seed 004 on bytes).

The base vocabulary is the 256 byte values (ids 0..255, id = byte value), then the special tokens
(ids 256..), then one token per merge, in the order learned. ``vocab_size`` counts all three.

    1. cut the text into pre-tokens (``pretokenize.py``): special tokens out, then the GPT-2 pattern;
       count each distinct pre-token; each is a word of single bytes (b" the" -> b" ", b"t", b"h", b"e");
    2. count every adjacent pair of tokens, weighted by the pre-token's count ("aaa" holds (a, a) twice);
    3. merge the most frequent pair; **ties go to the lexicographically greater pair of byte strings**
       (compare the first tokens' bytes, then the second's: (b"t", b"h") > (b" ", b"t")); occurrences are
       replaced left to right without overlap;
    4. repeat until the vocabulary has ``vocab_size`` entries, or no pair is left.

Worked example: on ``"low low lower"`` the pre-tokens are b"low" (1), b" low" (1), b" lower" (1); the pairs
(l, o) and (o, w) occur 3 times each, (o, w) > (l, o), so the first merge is (b"o", b"w"), then (b"l", b"ow").

A recount of every pair after every merge costs O(corpus) per merge. This trainer keeps the counts up to
date instead: an index from each pair to the words that hold it, so a merge only revisits those words,
and a lazy max-heap of (count, pair) entries: a pair whose count rises gets a fresh entry; an entry whose
count is no longer current is dropped when it surfaces (or pushed back with the lower current count).

**Representation.** A word is a ``str`` with one character per token: token id ``i`` is the character
``symbol(i)`` (``chr(i)``, the surrogate block skipped), so a byte-level word starts as its bytes decoded
as Latin-1 (b" the" -> " the"). A pair is then a 2-character string, and merging (a, b) into ``ab`` in a
word is ``word.replace(a + b, ab)``, which replaces left to right without overlap: step 3's rule, in C.
"""

from __future__ import annotations

import heapq
import os
from collections import defaultdict
from collections.abc import Sequence
from operator import add

from fmspec.reference.bpe.pretokenize import check_special_tokens, pretoken_counts

SURROGATES = 0xD800  # code points 0xD800..0xDFFF are not characters a str can hold on its own everywhere


def read_text(text: str | os.PathLike) -> str:
    """``text`` itself if a str, else the UTF-8 contents of the file at that path."""
    if isinstance(text, str):
        return text
    if isinstance(text, os.PathLike):
        with open(text, encoding="utf-8") as f:
            return f.read()
    raise TypeError(f"text must be a str or a path (os.PathLike), got {type(text).__name__}")


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
    text = read_text(text)
    specials = check_special_tokens(special_tokens)
    base = 256 + len(specials)
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < base:
        raise ValueError(f"vocab_size={vocab_size} is below the base vocabulary: 256 bytes + {len(specials)} "
                         f"special tokens = {base}")
    if not text:
        raise ValueError("text is empty: nothing to train on")

    vocab = {i: bytes([i]) for i in range(256)}
    for i, s in enumerate(specials):
        vocab[256 + i] = s.encode("utf-8")
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
