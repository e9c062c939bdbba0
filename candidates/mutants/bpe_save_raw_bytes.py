"""bpe: save writes tokens as Latin-1 text instead of through GPT-2's byte-to-unicode table (a space stays a space)."""

import json

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch

COMPONENT = "bpe"
CAUGHT_BY = ["test_save_then_load_round_trip"]


def save(vocab, merges, vocab_path, merges_path):
    with open(vocab_path, "w", encoding="utf-8") as f:
        json.dump({tok.decode("latin-1"): i for i, tok in vocab.items()}, f)
    with open(merges_path, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{a.decode('latin-1')} {b.decode('latin-1')}\n")


bpe = patch(ref, save=save)
