"""The two steps of BPE: count the adjacent pairs, merge one pair (as minbpe's ``get_stats`` and ``merge``).

Both trainers (``words.py``: the lecture's word level; ``training.py``: byte level) and both encoders
(``segment_word``, ``Tokenizer.encode``) are loops over these two functions. They work on any symbols:
int ids (byte level: ``b"low"`` is ``[108, 111, 119]``), characters (word level: ``["l", "o", "w",
"</w>"]``) or bytes (the encoder: ``[b"l", b"o", b"w"]``).

- **count**: a pair is counted at every adjacent position, so a run ``a a a`` holds (a, a) twice;
- **merge**: occurrences are replaced left to right without overlap, so ``a a a`` becomes ``aa a``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

S = TypeVar("S", bound=Hashable)


def get_stats(ids: Sequence[S], counts: dict[tuple[S, S], int] | None = None, weight: int = 1
              ) -> dict[tuple[S, S], int]:
    """Count every adjacent pair of ``ids``, adding ``weight`` per occurrence to ``counts`` (updated in place
    and returned; dicts keep the order in which pairs are first seen)::

        ids=[1, 2, 3, 1, 2]            -> {(1, 2): 2, (2, 3): 1, (3, 1): 1}
        ids=[7, 7, 7]                  -> {(7, 7): 2}      (a run holds the pair at every position)
        ids=[1, 2], counts={(1, 2): 5}, weight=3 -> {(1, 2): 8}
    """
    counts = {} if counts is None else counts
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + weight
    return counts


def merge(ids: Sequence[S], pair: tuple[S, S], idx: S) -> list[S]:
    """Replace every occurrence of ``pair`` in ``ids`` by ``idx``, left to right, without overlap::

        ids=[1, 2, 3, 1, 2], pair=(1, 2), idx=4           -> [4, 3, 4]
        ids=[7, 7, 7], pair=(7, 7), idx=8                 -> [8, 7]
        ids=["l", "o", "w"], pair=("l", "o"), idx="lo"    -> ["lo", "w"]
    """
    a, b = pair
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
