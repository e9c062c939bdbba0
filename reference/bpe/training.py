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
"""

from __future__ import annotations

import heapq
import os
from collections import defaultdict
from collections.abc import Sequence

from reference.bpe.pretokenize import check_special_tokens, pretoken_counts

SHIFT = 1 << 32  # pair key a * SHIFT + b: ids stay far below 2**32


def read_text(text: str | os.PathLike) -> str:
    """``text`` itself if a str, else the UTF-8 contents of the file at that path."""
    if isinstance(text, str):
        return text
    if isinstance(text, os.PathLike):
        with open(text, encoding="utf-8") as f:
            return f.read()
    raise TypeError(f"text must be a str or a path (os.PathLike), got {type(text).__name__}")


def heap_key(token: bytes) -> tuple[int, ...]:
    """A key that sorts byte strings in *reverse* order, so that heapq (a min-heap) pops the greater pair first.

    b"ab" -> (158, 157, 256): every byte complemented, then 256, which sorts a proper prefix (b"a") after
    its extensions (b"ab"), as b"a" < b"ab".
    """
    return tuple(255 - x for x in token) + (256,)


def word_pairs(symbols: list[int]) -> "zip[tuple[int, int]]":
    """Every adjacent pair, at every position: [1, 1, 1] -> (1, 1), (1, 1)."""
    return zip(symbols, symbols[1:])


def merge_word(symbols: list[int], a: int, b: int, new: int) -> list[int]:
    """Replace (a, b) by ``new``, left to right, without overlap: ([1, 1, 1], 1, 1, 9) -> [9, 1]."""
    out, i, n = [], 0, len(symbols)
    while i < n:
        if symbols[i] == a and i + 1 < n and symbols[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def merge_word_at(symbols: list[int], a: int, b: int, new: int) -> tuple[list[int], list[int]]:
    """``merge_word`` that also returns where each replaced occurrence started in ``symbols``.

    ([5, 1, 2, 1, 2], 1, 2, 9) -> ([5, 9, 9], [1, 3])
    """
    starts: list[int] = []
    i, last = 0, len(symbols) - 1  # an occurrence starts before the last symbol
    find = symbols.index
    while True:
        try:
            j = find(a, i, last)
        except ValueError:
            break
        if symbols[j + 1] == b:
            starts.append(j)
            i = j + 2
        else:
            i = j + 1
    if len(starts) == 1:
        j = starts[0]
        return symbols[:j] + [new] + symbols[j + 2:], starts
    out: list[int] = []
    prev = 0
    for j in starts:
        out += symbols[prev:j]
        out.append(new)
        prev = j + 2
    out += symbols[prev:]
    return out, starts


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
    keys = {i: heap_key(tok) for i, tok in vocab.items()}

    counts = pretoken_counts([text], specials)  # {b" the": 812, ...}
    words = [list(tok) for tok in counts]  # each pre-token as byte ids
    freqs = list(counts.values())

    # pair -> count, and pair -> indices of the words holding it (a superset: entries go stale, harmlessly);
    # a pair (a, b) is keyed by the int a * SHIFT + b (hashes faster than a tuple)
    pair_counts: defaultdict[int, int] = defaultdict(int)
    where: defaultdict[int, set[int]] = defaultdict(set)
    for w, (symbols, freq) in enumerate(zip(words, freqs)):
        for a, b in word_pairs(symbols):
            pair = a * SHIFT + b
            pair_counts[pair] += freq
            where[pair].add(w)
    heap = [(-n, keys[p // SHIFT], keys[p % SHIFT], p) for p, n in pair_counts.items()]
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
        a, b = divmod(p, SHIFT)
        new = len(vocab)
        vocab[new] = vocab[a] + vocab[b]
        keys[new] = heap_key(vocab[new])
        merges.append((vocab[a], vocab[b]))

        grown = set()  # pairs whose count rose need a fresh heap entry; falls are caught lazily above
        for w in where.pop(p):
            old = words[w]
            merged, starts = merge_word_at(old, a, b, new)
            if not starts:
                continue  # a stale index entry: the pair left this word earlier
            freq = freqs[w]
            # only pairs next to a merged occurrence change: (x, a) (a, b) (b, y) -> (x, ab) (ab, y)
            if len(starts) == 1:
                j = starts[0]
                gone = range(j - 1 if j else 0, j + 2 if j + 2 < len(old) else j + 1)  # pairs at j-1, j, j+1
                born = range(j - 1 if j else 0, j + 1 if j + 1 < len(merged) else j)  # pairs at j-1, j
            else:
                gone = {q for j in starts for q in (j - 1, j, j + 1) if 0 <= q <= len(old) - 2}
                born = {q for k, j in enumerate(starts) for q in (j - k - 1, j - k) if 0 <= q <= len(merged) - 2}
            for q in gone:
                pair_counts[old[q] * SHIFT + old[q + 1]] -= freq
            for q in born:
                pair = merged[q] * SHIFT + merged[q + 1]
                pair_counts[pair] += freq
                grown.add(pair)
                where[pair].add(w)
            words[w] = merged
        del pair_counts[p]  # every occurrence is gone
        for pair in grown:
            heapq.heappush(heap, (-pair_counts[pair], keys[pair // SHIFT], keys[pair % SHIFT], pair))
    return vocab, merges
