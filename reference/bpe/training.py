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
and a lazy max-heap of (count, pair) entries, where an entry whose count is no longer the pair's current
count is dropped when it surfaces (every count that changes gets a fresh entry).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Sequence

from reference.bpe.pretokenize import check_special_tokens, pretoken_counts


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


def word_pairs(symbols: list[int]) -> list[tuple[int, int]]:
    """Every adjacent pair, at every position: [1, 1, 1] -> [(1, 1), (1, 1)]."""
    return list(zip(symbols, symbols[1:]))


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
    out: list[int] = []
    starts: list[int] = []
    i, n = 0, len(symbols)
    find = symbols.index
    while True:
        try:
            j = find(a, i)
        except ValueError:
            break
        if j + 1 < n and symbols[j + 1] == b:
            out += symbols[i:j]
            out.append(new)
            starts.append(j)
            i = j + 2
        else:
            out += symbols[i:j + 1]
            i = j + 1
    out += symbols[i:]
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

    # pair -> count, and pair -> indices of the words holding it (a superset: entries go stale, harmlessly)
    pair_counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for w, (symbols, freq) in enumerate(zip(words, freqs)):
        for pair in word_pairs(symbols):
            pair_counts[pair] = pair_counts.get(pair, 0) + freq
            where.setdefault(pair, set()).add(w)
    heap = [(-n, keys[a], keys[b], a, b) for (a, b), n in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[bytes, bytes]] = []
    while len(vocab) < vocab_size:
        # the most frequent pair, ties to the greater pair: the first heap entry that is still current
        while heap:
            neg, _, _, a, b = heapq.heappop(heap)
            if pair_counts.get((a, b)) == -neg:
                break
        else:
            break  # no pair left
        new = len(vocab)
        vocab[new] = vocab[a] + vocab[b]
        keys[new] = heap_key(vocab[new])
        merges.append((vocab[a], vocab[b]))

        touched = set()
        for w in where.pop((a, b)):
            old = words[w]
            merged, starts = merge_word_at(old, a, b, new)
            if not starts:
                continue  # a stale index entry: the pair left this word earlier
            freq = freqs[w]
            # only pairs next to a merged occurrence change: (x, a) (a, b) (b, y) -> (x, ab) (ab, y)
            last = len(old) - 2
            for p in {q for j in starts for q in (j - 1, j, j + 1) if 0 <= q <= last}:
                pair = (old[p], old[p + 1])
                pair_counts[pair] -= freq
                touched.add(pair)
            last = len(merged) - 2
            for p in {q for k in range(len(starts)) for q in (starts[k] - k - 1, starts[k] - k) if 0 <= q <= last}:
                pair = (merged[p], merged[p + 1])
                pair_counts[pair] = pair_counts.get(pair, 0) + freq
                touched.add(pair)
                where.setdefault(pair, set()).add(w)
            words[w] = merged
        for pair in touched:
            n = pair_counts[pair]
            if n:
                heapq.heappush(heap, (-n, keys[pair[0]], keys[pair[1]], pair[0], pair[1]))
            else:
                del pair_counts[pair]
    return vocab, merges
