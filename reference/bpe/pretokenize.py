"""Pre-tokenization: special tokens first, then the GPT-2 regular expression.

BPE never merges across a pre-token boundary: the text is cut into pieces first, and merges happen inside
pieces only. Two cuts, in this order:

1. **Special tokens** (``"<|endoftext|>"``) are split out of the text before anything else. They are
   matched leftmost first and, among those starting at the same place, longest first (so with the specials
   ``"<|a|>"`` and ``"<|a|><|a|>"`` the text ``"<|a|><|a|>"`` is one special). Training drops them (they are
   never counted, never merged into); encoding maps each to its own id.
2. **The GPT-2 pattern** cuts the text between specials into pre-tokens (Radford et al., 2019)::

       's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+

   English contractions, an optional space glued to the front of a run of letters, of digits or of other
   symbols, and whitespace runs (a run followed by a word leaves its last space to that word).

Worked example::

    split_specials("hi<|endoftext|>you", ["<|endoftext|>"]) -> [("hi", False), ("<|endoftext|>", True), ("you", False)]
    pretokenize("I'll see  you.")                          -> ["I", "'ll", " see", " ", " you", "."]

The pattern needs ``\\p{L}``/``\\p{N}`` (Unicode letters and numbers), which Python's ``re`` lacks: the
third-party ``regex`` module provides them. Without it a fallback builds the same classes from
``unicodedata`` (Python's own Unicode version, which may be older than ``regex``'s: characters assigned
since then are neither letters nor numbers there).
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# the White_Space property: what \s means to the regex module (Python's re adds \x1c-\x1f)
_WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@functools.cache
def gpt2_regex():
    """The compiled GPT-2 pattern: ``regex`` if installed, else an equivalent ``re`` pattern."""
    try:
        import regex
    except ImportError:
        return re.compile(_fallback_pattern())
    return regex.compile(GPT2_PATTERN)


def _fallback_pattern() -> str:
    """GPT2_PATTERN for Python's ``re``: \\p{L}, \\p{N} and \\s spelled out as character ranges."""
    letters, numbers = [], []
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat[0] == "L":
            letters.append(cp)
        elif cat[0] == "N":
            numbers.append(cp)
    L, N, S = _ranges(letters), _ranges(numbers), _WHITE_SPACE
    return (rf"""'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+""")


def _ranges(codepoints: list[int]) -> str:
    """[0x41, 0x42, 0x43, 0x61] -> 'A-Ca' (escaped for a character class)."""
    out, start = [], None
    for i, cp in enumerate(codepoints):
        if start is None:
            start = cp
        if i + 1 == len(codepoints) or codepoints[i + 1] != cp + 1:
            out.append(re.escape(chr(start)) + ("-" + re.escape(chr(cp)) if cp != start else ""))
            start = None
    return "".join(out)


def check_special_tokens(special_tokens: Sequence[str]) -> tuple[str, ...]:
    """The special tokens as a tuple of distinct non-empty strings; ValueError/TypeError otherwise."""
    if isinstance(special_tokens, (str, bytes)):
        raise TypeError(f"special_tokens must be a sequence of str, got a single {type(special_tokens).__name__}")
    specials = tuple(special_tokens or ())
    for s in specials:
        if not isinstance(s, str):
            raise TypeError(f"special_tokens must hold str, got {type(s).__name__} {s!r}")
        if not s:
            raise ValueError("special_tokens: the empty string cannot be a special token")
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"special_tokens: {s!r} holds a lone surrogate, which has no UTF-8 form") from None
    if len(set(specials)) != len(specials):
        raise ValueError(f"special_tokens has duplicates: {list(specials)!r}")
    return specials


@functools.lru_cache(maxsize=64)
def _special_regex(specials: tuple[str, ...]):
    longest_first = sorted(specials, key=len, reverse=True)  # alternation takes the first that matches
    return re.compile("|".join(map(re.escape, longest_first)))


def split_specials(text: str, specials: Sequence[str]) -> list[tuple[str, bool]]:
    """Cut ``text`` at its special tokens: ``[(piece, is_special), ...]``, empty pieces left out."""
    if not specials:
        return [(text, False)] if text else []
    out, pos = [], 0
    for m in _special_regex(tuple(specials)).finditer(text):
        if m.start() > pos:
            out.append((text[pos:m.start()], False))
        out.append((m.group(), True))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def pretokenize(text: str) -> list[str]:
    """The GPT-2 pre-tokens of ``text`` (no special tokens in it): their concatenation is ``text``."""
    return gpt2_regex().findall(text)


def pretoken_counts(texts: Iterable[str], specials: Sequence[str]) -> Counter[bytes]:
    """How often each pre-token occurs (as UTF-8 bytes), specials cut out and dropped::

        pretoken_counts(["a a<|endoftext|>a"], ["<|endoftext|>"]) -> {b"a": 2, b" a": 1}
    """
    counts: Counter[str] = Counter()
    find = gpt2_regex().findall
    for text in texts:
        for piece, is_special in split_specials(text, specials):
            if not is_special:
                counts.update(find(piece))
    return Counter({tok.encode("utf-8"): n for tok, n in counts.items()})
