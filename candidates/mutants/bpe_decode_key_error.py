"""bpe: decode looks ids up with vocab[i]: an unknown id raises KeyError (999999), not ValueError naming ids."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.tokenizer as tok_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_tokenizer_bad_arguments_raise"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("            tok = self.vocab.get(i)\n"
     "            if tok is None:\n"
     "                raise ValueError(f\"ids: unknown id {i} (vocab has {len(self.vocab)} ids)\")\n"
     "            out.append(tok)\n",
     "            out.append(self.vocab[i])\n"),
]

bpe = patch(ref, Tokenizer=edit_source(tok_module, EDITS).Tokenizer)
