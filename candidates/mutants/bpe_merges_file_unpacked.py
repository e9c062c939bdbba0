"""bpe: from_files unpacks each merges.txt line as `a, b = line.split(" ")`: a malformed line raises "too many values to unpack", naming no file."""

import fmspec.reference.bpe as ref
import fmspec.reference.bpe.files as files_module
from fmspec.candidates.mutants import edit_source, patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_from_files_bad_files_raise"]
EDITS = [  # the reference with these lines changed (the first occurrence of each)
    ('            parts = line.split(" ")\n'
     "            if len(parts) != 2 or not all(parts):\n"
     '                raise ValueError(f"merges_path: line {n} is not two tokens separated by one space: {line!r}")\n'
     '            merges.append((text_to_token(parts[0], source="merges_path"), '
     'text_to_token(parts[1], source="merges_path")))\n',
     '            a, b = line.split(" ")\n'
     '            merges.append((text_to_token(a, source="merges_path"), text_to_token(b, source="merges_path")))\n'),
]
load = edit_source(files_module, EDITS).load


class Tokenizer(ref.Tokenizer):
    @classmethod
    def from_files(cls, vocab_path, merges_path, special_tokens=()):
        vocab, merges = load(vocab_path, merges_path)
        return cls(vocab, merges, special_tokens)


bpe = patch(ref, Tokenizer=Tokenizer, load=load)
