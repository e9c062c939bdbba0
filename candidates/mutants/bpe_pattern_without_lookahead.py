r"""bpe: the GPT-2 pattern without its \s+(?!\S) branch: "  word" splits as "  " + "word", not " " + " word"."""

import types

import regex

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import patch
from fmspec.reference.bpe.pretokenize import GPT2_PATTERN

COMPONENT = "bpe"
CAUGHT_BY = ["test_encode_applies_merges_by_rank", "test_encode_matches_hf_tokenizers"]

_PATTERN = regex.compile(GPT2_PATTERN.replace(r"|\s+(?!\S)", ""))


def pretokenize(text):
    return _PATTERN.findall(text)


def _clone(fn):
    return types.FunctionType(fn.__code__, {**tok_module.__dict__, "pretokenize": pretokenize}, fn.__name__,
                              fn.__defaults__)


class Tokenizer(ref.Tokenizer):
    encode = _clone(ref.Tokenizer.encode)
    _final_prefix = _clone(ref.Tokenizer._final_prefix)


bpe = patch(ref, Tokenizer=Tokenizer)
