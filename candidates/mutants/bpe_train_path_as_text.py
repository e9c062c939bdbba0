"""bpe: train turns a path into a str with os.fspath first, then trains on the path's name instead of the file."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.training as train_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_train_reads_a_path"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ("    if isinstance(text, str):\n        return text\n",
     "    if isinstance(text, os.PathLike):\n        text = os.fspath(text)\n    if isinstance(text, str):\n        return text\n"),
]

# the readable trainer (the fast one, bpe.train, reads its text with the same read_text)
bpe = patch(ref, train=edit_source(train_module, EDITS).train)
