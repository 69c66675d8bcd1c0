"""What a model API endpoint is, to the wire layer, and how a request's path finds one cheaply.

An HTTP request that is not a model call costs one ``str.endswith`` over a tuple of suffixes; only
a path that ends like a model endpoint has its body read (a JSON object of the right shape, or it
is passed on unrecorded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from genops_autoinstrument.api import Call, Usage, free_texts
from genops_autoinstrument.api.wire import ErrorBody
from genops_autoinstrument.api.wire_streams import WireAccumulator


@dataclass(frozen=True)
class Api:
    """One API family: its own provider (for unknown hosts) and its error body."""

    name: str
    provider: str
    error_body: ErrorBody
    budget_status: int = 429  # the status a budget block is answered with


@dataclass
class Described:
    """What an endpoint reads from a request body before it is sent."""

    model: str | None
    parameters: dict[str, Any] = field(default_factory=dict)
    max_output_tokens: int | None = None
    prompt_text: Callable[[], Iterator[str]] | None = None
    input_messages: Callable[[], Any] | None = None


class Reader(WireAccumulator):
    """Response facts gathered from a body or events by an endpoint's reading functions."""

    def __init__(self, on_event: Callable[["Reader", str | None, Any], bool], on_body: Callable[["Reader", Any], None], hide: bool = False) -> None:
        self._on_event = on_event
        self._on_body = on_body
        self.hide = hide
        self.model: str | None = None
        self.response_id: str | None = None
        self.reasons: list[str] = []
        self.usage: Usage | None = None

    def event(self, name: str | None, data: Any) -> bool:
        return self._on_event(self, name, data) if isinstance(data, (dict, list)) else False

    def body(self, data: Any) -> None:
        self._on_body(self, data)

    def first(self, model: Any = None, response_id: Any = None) -> None:
        """Keep the first model and id seen."""
        if self.model is None and isinstance(model, str) and model:
            self.model = model
        if self.response_id is None and isinstance(response_id, str) and response_id:
            self.response_id = response_id

    def reason(self, value: Any) -> None:
        if isinstance(value, str) and value:
            self.reasons.append(value)

    def finish(self, call: Call) -> None:
        call.finish(response_model=self.model, response_id=self.response_id, finish_reasons=self.reasons, usage=self.usage)


@dataclass(frozen=True)
class Endpoint:
    """One model endpoint, recognised by the end of its path."""

    suffix: str
    api: Api
    operation: str
    describe: Callable[[dict, str], Described]  # (request body, path)
    streams: Callable[[dict], bool]  # does this request ask for a stream?
    on_event: Callable[[Reader, str | None, Any], bool]
    on_body: Callable[[Reader, Any], None]
    framing: str = "sse"  # the stream's framing when the response's content type does not say
    usage_option: bool = False  # OpenAI-compatible stream_options.include_usage
    always_streams: bool = False

    def reader(self, hide: bool) -> Reader:
        return Reader(self.on_event, self.on_body, hide)


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def number(value: Any) -> float | int | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# Keys that are never free text in any of these APIs: the model, roles, ids and statuses, inline
# base64 media (``data``: a plain-text document's is read all the same), opaque reasoning signatures
# and encrypted content, cache markers, the end user's id.
OPAQUE = frozenset(
    {"model", "role", "type", "id", "status", "user", "stream", "data", "bytes", "media_type", "mime_type", "mimeType",
     "file_id", "file_data", "detail", "signature", "encrypted_content", "cache_control"}
)


def body_texts(body: dict, opaque: frozenset[str] = OPAQUE, arguments: frozenset[str] = frozenset()) -> Callable[[], list[str]]:
    """Every free text a request body sends (the whole body, not only its messages: tool calls'
    arguments, tool definitions, documents, schemas, stop sequences), read only when a content
    rule or the estimate asks; the values of ``arguments`` keys as ``key: value``."""
    return lambda: free_texts((body,), opaque, arguments)


def texts(value: Any, depth: int = 0) -> Iterator[str]:
    """The texts of a message, whatever the API's nesting (``content``, ``parts``, ``text`` fields,
    strings and lists of them): for the recorded input messages (opt-in)."""
    if depth > 8:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from texts(item, depth + 1)
    elif isinstance(value, dict):
        for key in ("content", "text", "parts", "prompt", "input", "system"):
            if key in value:
                yield from texts(value[key], depth + 1)


def messages_of(items: Any, role_key: str = "role") -> list[dict[str, Any]]:
    """Messages in the GenAI semconv JSON shape (recorded only on opt-in)."""
    result = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, dict):
            result.append({"role": item.get(role_key) or "user", "parts": [{"type": "text", "content": t} for t in texts(item)]})
    return result


def str_model(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
