"""Every free text a Bedrock Runtime request sends, for content rules and the reservation estimate.

Converse has one documented shape; InvokeModel bodies are each vendor's own JSON (Anthropic
Messages, Cohere chat, Mistral and OpenAI-compatible chat, Nova, Titan, Llama…), so a body is read
whole, every string in it except the values of keys that are never free text (roles, ids,
signatures, base64 media). Tool calls' arguments and results are dicts: their keys count too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Callable, Mapping

# Keys whose values are never free text: roles, ids and statuses, media and its format, opaque
# reasoning signatures and redacted reasoning, cache markers, S3 locations, vendor version tags.
_OPAQUE = frozenset(
    {
        "role", "type", "id", "toolUseId", "tool_use_id", "tool_call_id", "status", "format", "media_type",
        "signature", "redactedContent", "redacted_thinking", "encrypted_content", "cachePoint", "cache_control",
        "s3Location", "image", "images", "inputImage", "video", "audio", "bytes", "data",
        "anthropic_version", "anthropic_beta", "input_type", "embedding_types", "truncate",
    }
)
# Values that are a tool call's arguments or a tool's result (dicts the API receives as JSON): each
# of their strings and numbers is read as "key: value", so {"password": …} or a card held as a
# number is judged as the model receives it (Converse/Nova toolUse.input and toolResult json,
# Anthropic tool_use.input, Cohere tool calls' parameters and tool outputs).
_ARGUMENTS = frozenset({"input", "json", "parameters", "outputs"})
# Schema maps keyed by the application's own names (a property called "type" or "input" is still read).
_NAMED = frozenset({"properties", "patternProperties", "$defs", "definitions", "parameter_definitions"})
_PLAIN_FORMATS = frozenset({"txt", "md", "csv", "html"})  # document formats whose bytes are the text itself
_LABELLED_UP_TO = 512  # a longer string is read bare: no copy of a large value


def _document_text(node: Mapping[str, Any], encoded: bool) -> str | None:
    """A plain-text document's bytes as text (raw in Converse, base64 in an InvokeModel body); an
    Anthropic plain-text source's ``data``."""
    if node.get("type") == "text" and isinstance(node.get("data"), str):
        return node["data"]
    source = node.get("source")
    raw = source.get("bytes") if node.get("format") in _PLAIN_FORMATS and isinstance(source, Mapping) else None
    if isinstance(raw, str) and encoded:
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw).decode("utf-8", "replace")
    return raw if isinstance(raw, str) else None


def _pairs(node: Mapping[str, Any], texts: list[str]) -> list[tuple[Any, str | None]]:
    """One labelled mapping: its strings and numbers as ``name: value``; what lies below, labelled."""
    below: list[tuple[Any, str | None]] = []
    for name, value in node.items():
        if isinstance(value, str):
            texts.append(f"{name}: {value}" if len(value) <= _LABELLED_UP_TO else value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            texts.append(f"{name}: {value}")
        elif value is not None:
            below.append((value, str(name)))
    return below


def collect(roots: list[Any], *, encoded: bool = False, labels: frozenset[int] = frozenset()) -> list[str]:
    """The strings under ``roots``, the roots in order (those at the positions in ``labels`` read as
    ``key: value`` pairs), each mapping's own strings before what is nested in it. No recursion,
    whatever the depth; a seen-set, so each container is read once and a cycle ends. ``encoded``:
    bytes in the body are base64 text."""
    texts: list[str] = []
    visited: set[int] = set()
    todo: list[tuple[Any, str | None]] = [(root, "" if index in labels else None) for index, root in enumerate(roots)][::-1]
    while todo:
        node, key = todo.pop()
        if isinstance(node, str):
            texts.append(f"{key}: {node}" if key and len(node) <= _LABELLED_UP_TO else node)
            continue
        if id(node) in visited or not isinstance(node, (dict, list, tuple, Mapping)):
            continue
        visited.add(id(node))
        if isinstance(node, (list, tuple)):
            todo.extend((item, key) for item in reversed(node) if item is not None)
            continue
        if key is not None:
            todo.extend(reversed(_pairs(node, texts)))
            continue
        document = _document_text(node, encoded) if "source" in node or "data" in node else None
        if document is not None:
            texts.append(document)
        below: list[tuple[Any, str | None]] = []
        for name, value in node.items():
            if name in _OPAQUE or value is None or isinstance(value, (bool, int, float)):
                continue
            if isinstance(value, str):
                texts.append(value)
            elif name in _ARGUMENTS:
                below.append((value, name))
            elif name in _NAMED and isinstance(value, Mapping) and id(value) not in visited:
                visited.add(id(value))
                below.extend((schema, None) for schema in value.values())
            else:
                below.append((value, None))
        todo.extend(reversed(below))
    return texts


def converse_texts(params: Mapping[str, Any]) -> list[str]:
    """A Converse request's texts: the system prompt, tool definitions (names, descriptions, input
    schemas), the output schema, stop sequences, prompt variables, the vendor fields passed through
    (``additionalModelRequestFields``), request metadata (as ``key: value``), then the messages:
    texts, documents, tool calls and results, reasoning, guarded content; newest last."""
    inference = params.get("inferenceConfig")
    roots = [
        params.get("system"),
        params.get("toolConfig"),
        params.get("outputConfig"),
        inference.get("stopSequences") if isinstance(inference, Mapping) else None,
        params.get("promptVariables"),
        params.get("additionalModelRequestFields"),
        params.get("requestMetadata"),
        params.get("messages"),
    ]
    return collect(roots, labels=frozenset({6}))


def body_texts(body: Mapping[str, Any]) -> list[str]:
    """An InvokeModel body's texts, whatever the vendor: every string but ids, roles and media."""
    return collect([body], encoded=True)


def unparsed(raw: Any) -> Callable[[], list[str]] | None:
    """A body sent as text that is not a JSON object (malformed, or nested deeper than the parser
    goes) is judged as the text it is; a file-like body is never read (it would be consumed)."""
    if isinstance(raw, str):
        return lambda: [raw]
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return lambda: [bytes(raw).decode("utf-8", "replace")]
    return None
