"""Byte Pair Encoding (seed 004, "Byte Pair Encoding — From Words to Subwords").

Start from characters (or bytes) and repeatedly replace the most frequent adjacent pair of symbols by one
new symbol; the number of merges sets the vocabulary size (Sennrich et al., 2016). Two flavours:

- **word level**, as the lecture: words as characters plus the end-of-word symbol ``</w>``, ties broken by
  first occurrence (``words.py``: ``train_words``, ``segment_word``). The lecture's example
  {low: 5, lower: 2, newest: 6, widest: 3} gives the merges es, est, est</w>, lo, low, ne, new,
  newest</w>, low</w>, wi, and its 19 merges segment "Abwasserbehandlungsanlage" as
  ``Abwasser b e han dlung s an lag e </w>``;
- **byte level**, GPT-2 style: the 256 bytes as base vocabulary, regular-expression pre-tokenization,
  special tokens never split nor merged into, ties broken by the lexicographically greater pair of byte
  strings (``pretokenize.py``, ``training.py``: ``train``; ``tokenizer.py``: ``Tokenizer`` with ``encode``,
  ``decode``, ``encode_iterable``; ``files.py``: ``save``, ``load`` in GPT-2's file format).

Both count a pair at every adjacent position (``a a a`` holds (a, a) twice) and merge occurrences left to
right without overlap (``a a a`` -> ``aa a``): ``get_stats`` and ``merge`` in ``pairs.py``, the two steps
every trainer and encoder here loops over. Read in this order: ``pairs.py``, ``words.py``,
``pretokenize.py``, ``training.py``, ``tokenizer.py``, ``files.py``.

``training.py`` is the readable byte-level trainer (a recount of every pair after every merge, as the
lecture). ``bpe.train`` is ``training_fast.train``, which learns the same merges 35x to 150x faster by
keeping the counts up to date (the speed reference of ``suites/bench_bpe.py``); ``tests/test_bpe_trainers.py``
holds the two equal. Spec: docs/spec/bpe.md.
"""

from fmspec.reference.bpe.files import load, save
from fmspec.reference.bpe.tokenizer import Tokenizer
from fmspec.reference.bpe.training_fast import train
from fmspec.reference.bpe.words import END_OF_WORD, segment_word, train_words

__all__ = ["END_OF_WORD", "Tokenizer", "load", "save", "segment_word", "train", "train_words"]
