"""bpe: pairs counted without overlap during training ("aaa" holds (a, a) once, as str.count would say)."""

import fmspec.reference.bpe as ref
from fmspec.candidates.mutants import patch
from fmspec.reference.bpe.pretokenize import check_special_tokens, pretoken_counts
from fmspec.reference.bpe.training import read_text

COMPONENT = "bpe"
CAUGHT_BY = ["test_train_counts_pairs_at_every_position",
             "test_train_ties_go_to_greater_pair"]


def count_pairs(symbols):
    counts, i = {}, 0
    while i + 1 < len(symbols):
        pair = (symbols[i], symbols[i + 1])
        counts[pair] = counts.get(pair, 0) + 1
        i += 2 if symbols[i] == symbols[i + 1] else 1  # skips the overlapping occurrence
    return counts


def merge_word(symbols, a, b, new):
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == (a, b):
            out.append(new)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def train(text, vocab_size, special_tokens=()):
    ref.train(text, 256 + len(special_tokens or ()), special_tokens)  # the argument checks (no merges)
    if not isinstance(vocab_size, int) or vocab_size < 256 + len(special_tokens):
        raise ValueError("vocab_size below the base vocabulary")
    text = read_text(text)
    specials = check_special_tokens(special_tokens)
    vocab = {i: bytes([i]) for i in range(256)}
    for s in specials:
        vocab[len(vocab)] = s.encode()
    words = {tuple(tok): n for tok, n in pretoken_counts([text], specials).items()}
    merges = []
    while len(vocab) < vocab_size:
        counts = {}
        for symbols, n in words.items():
            for pair, c in count_pairs(symbols).items():
                counts[pair] = counts.get(pair, 0) + c * n
        if not counts:
            break
        a, b = max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))
        new = len(vocab)
        vocab[new] = vocab[a] + vocab[b]
        merges.append((vocab[a], vocab[b]))
        words = {tuple(merge_word(list(s), a, b, new)): n for s, n in words.items()}
    return vocab, merges


bpe = patch(ref, train=train)
