"""bpe: encode_iterable encodes each chunk on its own, so words and specials cut by a chunk boundary split."""

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_encode_iterable_any_chunking"]


class Tokenizer(ref.Tokenizer):
    def encode_iterable(self, lines):
        for line in lines:
            yield from self.encode(line)


bpe = patch(ref, Tokenizer=Tokenizer)
