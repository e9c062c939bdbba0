"""Saving and loading a byte-level vocabulary in GPT-2's file format (``vocab.json`` + ``merges.txt``).

GPT-2 stores tokens as text: every byte is shown as one printable character (Radford et al., 2019,
``encoder.py``, ``bytes_to_unicode``). The printable bytes ``!``..``~``, ``¡``..``¬`` and ``®``..``ÿ`` stand for
themselves; the 68 others (control bytes, space, ...) are shifted to U+0100 onwards in byte order, so the
space byte 0x20 is ``Ġ`` (U+0120) and the newline 0x0A is ``Ċ``. A token is its bytes' characters joined:
b" the" -> ``"Ġthe"``.

- ``vocab.json``: ``{"Ġthe": 262, ...}``, token text -> id;
- ``merges.txt``: an optional ``#version: 0.2`` line, then one merge a line, in rank order: ``Ġ t``.

HF ``tokenizers`` reads the same two files (``models.BPE.from_file``), so a vocabulary saved here loads there.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's table: byte value -> the printable character that stands for it (256 entries)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shifted = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + shifted)
            shifted += 1
    return table


@functools.cache
def unicode_to_bytes() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


def token_to_text(token: bytes) -> str:
    """b" the" -> "Ġthe"."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def text_to_token(text: str, *, source: str = "token") -> bytes:
    """"Ġthe" -> b" the"; ValueError for a character outside GPT-2's table."""
    table = unicode_to_bytes()
    try:
        return bytes(table[c] for c in text)
    except KeyError as exc:
        raise ValueError(f"{source}: {text!r} has a character outside GPT-2's byte table: {exc.args[0]!r}") from None


def save(vocab: Mapping[int, bytes], merges: Sequence[tuple[bytes, bytes]],
         vocab_path: str | os.PathLike, merges_path: str | os.PathLike) -> None:
    """Write ``vocab`` and ``merges`` as GPT-2's ``vocab.json`` and ``merges.txt``."""
    as_text = {token_to_text(tok): int(i) for i, tok in sorted(vocab.items())}
    if len(as_text) != len(vocab):
        raise ValueError("vocab has two ids for the same token")
    with open(vocab_path, "w", encoding="utf-8") as f:
        json.dump(as_text, f, ensure_ascii=False)
    with open(merges_path, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in merges:
            f.write(f"{token_to_text(a)} {token_to_text(b)}\n")


def load(vocab_path: str | os.PathLike, merges_path: str | os.PathLike
         ) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """Read GPT-2's ``vocab.json`` and ``merges.txt``: ``(vocab, merges)`` with tokens as bytes."""
    with open(vocab_path, encoding="utf-8") as f:
        as_text = json.load(f)
    if not isinstance(as_text, dict):
        raise ValueError(f"vocab_path: {os.fspath(vocab_path)!r} does not hold a JSON object token -> id")
    bad = next(((tok, i) for tok, i in as_text.items() if not isinstance(i, int) or isinstance(i, bool)), None)
    if bad:
        raise ValueError(f"vocab_path: the id of {bad[0]!r} is {bad[1]!r}, not an int")
    vocab = {i: text_to_token(tok, source="vocab_path") for tok, i in as_text.items()}
    merges = []
    with open(merges_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line or (n == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"merges_path: line {n} is not two tokens separated by one space: {line!r}")
            merges.append((text_to_token(parts[0], source="merges_path"), text_to_token(parts[1], source="merges_path")))
    return vocab, merges
