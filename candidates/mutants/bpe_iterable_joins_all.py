"""bpe: encode_iterable joins the whole iterable before encoding: right ids, but nothing until the input ends (a file is read whole)."""

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_encode_iterable_streams"]


class Tokenizer(ref.Tokenizer):
    def encode_iterable(self, lines):
        yield from self.encode("".join(lines))


bpe = patch(ref, Tokenizer=Tokenizer)
