"""A fast reader for the plain TOML a generated pricing file is written in.

``tomllib`` is pure Python: 200,000 ``[[price]]`` entries take it 10-20 s. Generated price lists
use a small part of TOML: ``[[price]]`` headers, ``key = "string"`` and ``key = number`` lines,
comments and blank lines. This reads exactly that part, one regular expression per line, and
gives the same values ``tomllib`` would (strings without escapes, decimal integers and floats read
by ``int``/``float``). Anything outside it (escapes, literal strings, dotted keys, underscores in
numbers, a repeated key, a key before the first table…) returns None, and ``tomllib`` reads the
file instead, with its own error messages.
"""

from __future__ import annotations

import re
from typing import Any

_TEXT = r"[^\x00-\x08\x0a-\x1f\x7f"  # what TOML allows in a comment or a basic string (plus tab)
_LINE = re.compile(
    r"[ \t]*(?:(?P<table>\[\[[ \t]*price[ \t]*\]\])"
    r"|(?P<key>[A-Za-z0-9_-]+)[ \t]*=[ \t]*"
    r'(?:"(?P<string>' + _TEXT + r'"\\]*)"'
    r"|(?P<number>-?(?:0|[1-9][0-9]{0,30})(?P<fraction>(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,4})?))))?"
    r"[ \t]*(?:#" + _TEXT + r"]*)?"
)


def read_plain_toml(text: str) -> dict[str, Any] | None:
    """The document as ``tomllib.loads`` would return it, or None when it is not plain."""
    entries: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    if text.endswith("\r"):  # a carriage return only counts as part of CRLF
        return None
    for line in text.split("\n"):
        if line.endswith("\r"):
            line = line[:-1]
        found = _LINE.fullmatch(line)
        if found is None:
            return None
        if found["table"]:
            current = {}
            entries.append(current)
            continue
        key = found["key"]
        if key is None:
            continue
        if current is None or key in current:
            return None
        string = found["string"]
        if string is not None:
            current[key] = string
        else:
            current[key] = float(found["number"]) if found["fraction"] else int(found["number"])
    return {"price": entries} if entries else {}
