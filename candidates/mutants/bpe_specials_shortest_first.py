"""bpe: overlapping special tokens matched in the order given, not longest first ("<|endoftext|><|endoftext|>" splits in two)."""

import re
import types

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_special_tokens_are_single_ids"]


def split_specials(text, specials):
    if not specials:
        return [(text, False)] if text else []
    pattern = "(" + "|".join(map(re.escape, specials)) + ")"  # the order the user gave
    return [(p, i % 2 == 1) for i, p in enumerate(re.split(pattern, text)) if p]


def _clone(fn):
    return types.FunctionType(fn.__code__, {**tok_module.__dict__, "split_specials": split_specials}, fn.__name__,
                              fn.__defaults__)


class Tokenizer(ref.Tokenizer):
    encode = _clone(ref.Tokenizer.encode)
    _final_prefix = _clone(ref.Tokenizer._final_prefix)


bpe = patch(ref, Tokenizer=Tokenizer)
