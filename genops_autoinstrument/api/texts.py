"""Every free text a request sends, read from its parsed body or SDK objects, for content rules and
the reservation estimate.

A plugin that holds a whole request (a JSON body at the wire layer, a framework's request objects)
passes it here with the keys that are never free text in its protocol: roles, ids, media, opaque
signatures, credentials. Everything else is read, so a field added by a new API version is judged
too (tool calls' arguments, tool descriptions, documents, schemas…). Tool calls' arguments and
results arrive as dicts with the application's own keys: their strings and numbers are read as
``key: value``, so ``{"password": …}`` or a card held as an int is judged as the model receives it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping

__all__ = ["LABELLED_UP_TO", "SCHEMA_MAPS", "free_texts"]

#: Characters: a longer string is read bare (a ``key: value`` secret is never longer; no copy of a large value).
LABELLED_UP_TO = 512
#: JSON-schema maps keyed by the application's own names: a property called "id" or "type" is still read.
SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "defs", "definitions"})

_KINDS: dict[type, int] = {}  # type -> 1 mapping, 2 SDK model (pydantic), 3 dataclass, 0 other (the checks are slow)


def _members(value: Any) -> Any:
    """The ``(key, value)`` pairs of a mapping, an SDK model or a dataclass instance; None otherwise."""
    if isinstance(value, dict):
        return value.items()
    if isinstance(value, type):  # a class is code, not a value the request sends
        return None
    cls = type(value)
    kind = _KINDS.get(cls)
    if kind is None:
        if isinstance(value, Mapping):
            kind = 1
        elif hasattr(cls, "model_fields") and hasattr(value, "__dict__"):
            kind = 2
        elif dataclasses.is_dataclass(cls):
            kind = 3
        else:
            kind = 0
        if len(_KINDS) < 1024:
            _KINDS[cls] = kind
    if kind == 1:
        return value.items()
    if kind == 2:
        return vars(value).items()
    if kind == 3:
        return [(field.name, getattr(value, field.name, None)) for field in dataclasses.fields(value)]
    return None


def _scalar(value: Any, label: str | None, found: list[str]) -> None:
    """A string (labelled ``key: value`` up to LABELLED_UP_TO characters), or a labelled number."""
    if isinstance(value, str):
        if value and not value.startswith("data:"):  # not an inline data: URL (base64 images, audio, files)
            found.append(value if label is None or len(value) > LABELLED_UP_TO else f"{label}: {value}")
    elif label is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        found.append(f"{label}: {value}")


class _Walk:
    """One walk's rules and state: what was found, which containers were read."""

    __slots__ = ("opaque", "arguments", "named", "found", "seen")

    def __init__(self, opaque: frozenset[str], arguments: frozenset[str], named: frozenset[str]) -> None:
        self.opaque, self.arguments, self.named = opaque, arguments, named
        self.found: list[str] = []
        self.seen: set[int] = set()

    def below(self, node: Any, label: str | None) -> list[tuple[Any, str | None]]:
        """Read ``node``'s own strings; return what is nested in it (in order), each with its label."""
        if id(node) in self.seen:
            return []
        if isinstance(node, (list, tuple)):
            self.seen.add(id(node))
            return [(child, label) for child in node]
        members = _members(node)
        if members is None:
            return []
        self.seen.add(id(node))
        nested: list[tuple[Any, str | None]] = []
        if label is not None:  # arguments: every key is the application's own
            for key, child in members:
                if isinstance(child, (str, int, float)):
                    _scalar(child, str(key), self.found)
                elif child is not None:
                    nested.append((child, str(key)))
            return nested
        kind = document = None
        for key, child in members:
            if child is None or isinstance(child, (bool, int, float, bytes, bytearray)):
                continue
            if key in self.opaque:
                kind = child if key == "type" else kind
                document = child if key == "data" else document
            elif isinstance(child, str):
                _scalar(child, None, self.found)
            elif key in self.arguments:
                nested.append((child, str(key)))
            elif key in self.named and isinstance(child, Mapping) and id(child) not in self.seen:
                self.seen.add(id(child))
                nested.extend((schema, None) for schema in child.values())
            else:
                nested.append((child, None))
        if kind == "text" and isinstance(document, str):  # a plain-text document source: its data is the text
            _scalar(document, None, self.found)
        return nested


def free_texts(
    roots: Iterable[Any],
    opaque: frozenset[str] = frozenset(),
    arguments: frozenset[str] = frozenset(),
    named: frozenset[str] = SCHEMA_MAPS,
) -> list[str]:
    """Every string under ``roots`` (dicts, mappings, lists, tuples, SDK models, dataclasses), the
    roots in order, each object's own strings before what is nested in it, each string as it is held
    (a labelled one copied only up to :data:`LABELLED_UP_TO` characters).

    Passed over: the values of ``opaque`` keys (a ``data`` beside ``"type": "text"`` is a plain-text
    document and is read all the same), numbers and booleans (settings), bytes, ``data:`` URLs.
    The values of ``arguments`` keys are the application's own data: read whole, strings and
    numbers as ``key: value``. The values of ``named`` keys are maps keyed by the application's
    names (schema properties): their keys are never taken for opaque ones. An explicit stack in
    place of recursion (any depth) and a seen-set (each container once, so a cycle ends)."""
    walk = _Walk(opaque, arguments, named)
    pending: list[tuple[Any, str | None]] = [(root, None) for root in roots]
    pending.reverse()
    while pending:
        node, label = pending.pop()
        if node is None or isinstance(node, (str, int, float, bytes, bytearray)):
            _scalar(node, label, walk.found)
        else:
            nested = walk.below(node, label)
            nested.reverse()
            pending.extend(nested)
    return walk.found
