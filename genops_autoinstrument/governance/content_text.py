"""The prompt as the content detectors read it: UTF-8 bytes, plus translations that make candidates literal.

Python's ``re`` scans about 10-100 ns per character when a pattern starts with a character class,
but at C ``memchr`` speed when it starts with a literal. So each detector looks for a *literal*
in a translated copy of the prompt (``shape``: every digit becomes ``0``, every letter ``a``, other
characters that cannot be part of a number ``x``; ``tokens``: every ``[A-Za-z0-9_-]`` becomes
``a``) and validates only the places found. Offsets are the same in every copy
(``bytes.translate`` and ``bytes.lower`` keep lengths). The validation work per detector family
and call is bounded too (:data:`CANDIDATES_PER_KIB`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import NamedTuple

#: Candidates each detector family validates per call (1-5 µs each): 32 per KiB of prompt, at least
#: 1,000 and at most 32,768; past it that family stops and the scan is partial. Business text, lists
#: of order ids included, stays below; a prompt that is nothing but numbers (a CSV of ids) or input
#: built so that every few bytes is a candidate may not.
CANDIDATES_PER_KIB = 32
MIN_CANDIDATES = 1_000
MAX_CANDIDATES = 32_768

_DIGITS = b"0123456789"
_LETTERS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _shape_table() -> bytes:
    table = bytearray(b"x" * 128 + b"a" * 128)  # non-ASCII bytes: parts of letters
    for char in _LETTERS + b"_":
        table[char] = ord("a")
    for char in _DIGITS:
        table[char] = ord("0")
    for char in b" -.()+":
        table[char] = char
    return bytes(table)


SHAPE_CLASS = _shape_table()  # "Tel: (415) 555-0123." reads "aaax (000) 000-0000."
TOKEN_CLASS = bytes.maketrans(_DIGITS + _LETTERS + b"_-", b"a" * 64)  # 20 token characters read "a" * 20
_LOWER_ALNUM = frozenset(_DIGITS + _LETTERS.lower())
_ASK_BEFORE_LOOKING = 16  # context checks of one kind before a whole-prompt check for its words
_ABSENT = -1


_LONG_RUN = b"0" * 24
_LONG_RUNS = re.compile(_LONG_RUN + rb"0*")


def _without_long_runs(shape: bytes) -> bytes:
    """Digit runs of 24 and more read as letters: no number of interest is that long, and each of their
    positions would otherwise be a candidate start (a prompt of nothing but digits)."""
    if _LONG_RUN not in shape:
        return shape
    return _LONG_RUNS.sub(lambda run: b"a" * len(run.group()), shape)


_JSON_ESCAPE = re.compile(rb"\\[nrtbf\"/\\]")


def _without_json_escapes(raw: bytes) -> bytes:
    """Escapes inside JSON strings (tool-call arguments) read as the separators they stand for: in
    ``"note\\n4012 8888 8888 1881"`` the escape would otherwise glue an ``n`` to the card number.
    Same length, so offsets hold; ``\\n`` keeps its line break for the paragraph checks."""
    if b"\\" not in raw:
        return raw
    return _JSON_ESCAPE.sub(lambda escape: b" \n" if escape.group()[1:] in (b"n", b"r") else b"  ", raw)


class Text:
    """One prompt's bytes, their translations, and the candidate budget left (shared by the detectors)."""

    __slots__ = ("raw", "shape", "tokens", "lower", "allowance", "budget", "_asked")

    def __init__(self, raw: bytes) -> None:
        raw = _without_json_escapes(raw)
        self.raw = raw
        self.shape = _without_long_runs(raw.translate(SHAPE_CLASS))
        self.tokens = raw.translate(TOKEN_CLASS)
        self.lower = raw.lower()
        self.allowance = min(MAX_CANDIDATES, max(MIN_CANDIDATES, len(raw) * CANDIDATES_PER_KIB // 1024))
        self.budget = self.allowance
        self._asked: dict[Words, int] = {}

    @property
    def partial(self) -> bool:
        """Whether some candidates were left unchecked (the budget ran out)."""
        return self.budget < 0

    def spend(self) -> bool:
        """Take one candidate from the budget; False once it is exhausted."""
        self.budget -= 1
        return self.budget >= 0

    def near(self, words: Words, start: int, end: int, before: int, after: int = 0) -> bool:
        """Whether one of ``words`` occurs from ``before`` bytes ahead of ``start`` to ``after`` bytes past
        ``end``, in the same paragraph (a context word of the previous message is no context)."""
        if words.literals:
            asked = self._asked.get(words, 0)
            if asked == _ABSENT:
                return False
            self._asked[words] = asked + 1
            if asked + 1 == _ASK_BEFORE_LOOKING and not any(literal in self.lower for literal in words.literals):
                self._asked[words] = _ABSENT  # many candidates, and no such word anywhere: stop looking
                return False
        lower = self.lower
        low = max(0, start - before)
        paragraph = lower.rfind(b"\n\n", low, start)
        if paragraph >= 0:
            low = paragraph + 2
        high = lower.find(b"\n\n", end, end + after)
        for match in words.pattern.finditer(lower, low, high if high >= 0 else end + after):
            if match.start() == 0 or lower[match.start() - 1] not in _LOWER_ALNUM:
                return True
        return False


class Words(NamedTuple):
    """Context words: a pattern for :meth:`Text.near`, and literals one of which every word contains."""

    pattern: "re.Pattern[bytes]"
    literals: tuple[bytes, ...]


def words(*alternatives: str, literals: tuple[str, ...] = ()) -> Words:
    """Lower-case context words for :meth:`Text.near` (which checks the left word boundary).

    The alternation comes first so that ``re`` skips to the possible first letters at C speed.
    ``literals``: substrings covering every word, to learn once that none occurs in a prompt.
    """
    pattern = re.compile(rb"(?:" + b"|".join(re.escape(word.encode()) for word in alternatives) + rb")(?![a-z0-9])")
    return Words(pattern, tuple(literal.encode() for literal in literals))


def entropy(value: bytes) -> float:
    """Shannon entropy in bits per character (random base64: about 4.5-5.5; English words: about 2.5-3.5)."""
    length = len(value)
    return -sum(count / length * math.log2(count / length) for count in Counter(value).values()) if length else 0.0


def char_classes(value: bytes) -> int:
    """How many of lower case, upper case, digits and other characters ``value`` uses."""
    classes = 0
    for group in (b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", _DIGITS):
        if len(value.translate(None, group)) != len(value):
            classes += 1
    if value.translate(None, _LETTERS + _DIGITS):
        classes += 1
    return classes
