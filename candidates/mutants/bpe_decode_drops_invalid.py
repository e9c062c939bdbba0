"""bpe: decode drops invalid UTF-8 (errors="ignore") instead of replacing it with U+FFFD."""

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_decode_replaces_invalid_utf8"]


class Tokenizer(ref.Tokenizer):
    def decode(self, ids):
        super().decode(ids)  # the argument checks
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="ignore")


bpe = patch(ref, Tokenizer=Tokenizer)
