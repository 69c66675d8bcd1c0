"""Shared fixtures: the real anthropic SDK against a MockTransport of the SDK's own HTTP library
(httpx2 from anthropic 2.0, httpx before) serving Anthropic-shaped JSON and SSE bodies, the real
OTel SDK through genops_autoinstrument.api.testing.capture."""

from __future__ import annotations

import json
from typing import Any, Callable

import anthropic._base_client
import pytest

# The HTTP library this anthropic release is built on: transports, responses and clients come from it.
http = getattr(anthropic._base_client, "httpx2", None) or anthropic._base_client.httpx

from genops_autoinstrument import config, semconv
from genops_autoinstrument.governance.decisions import Decision
from genops_autoinstrument.governance.governor import Governor, Ticket

MODEL = "claude-sonnet-4-6"


def message_json(
    *,
    model: str = MODEL,
    text: str = "Hello there!",
    input_tokens: int = 21,
    output_tokens: int = 9,
    cache_read: int | None = 0,
    cache_write: int | None = 0,
    stop_reason: str = "end_turn",
    msg_id: str = "msg_01XFDUDYJgAACzvnptvVoYEL",
) -> dict[str, Any]:
    """A Messages API response body as api.anthropic.com returns it."""
    usage: dict[str, Any] = {"input_tokens": input_tokens, "output_tokens": output_tokens, "service_tier": "standard"}
    if cache_read is not None:
        usage["cache_read_input_tokens"] = cache_read
    if cache_write is not None:
        usage["cache_creation_input_tokens"] = cache_write
        usage["cache_creation"] = {"ephemeral_5m_input_tokens": cache_write, "ephemeral_1h_input_tokens": 0}
    return {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


def sse(events: list[dict[str, Any]]) -> bytes:
    """A text/event-stream body: one ``event:``/``data:`` pair per event."""
    return b"".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in events)


def stream_events(
    *,
    model: str = MODEL,
    texts: tuple[str, ...] = ("Hello", " world", "!"),
    input_tokens: int = 25,
    cache_read: int = 0,
    cache_write: int = 0,
    output_tokens: int = 15,
    stop_reason: str = "end_turn",
    msg_id: str = "msg_014p7gG3wDgGV9EUtLvnow3U",
    error_after: int | None = None,
) -> list[dict[str, Any]]:
    """The event sequence of a streamed Message (message_start … message_stop), or one cut by an error event."""
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "cache_creation_input_tokens": cache_write,
                    "cache_read_input_tokens": cache_read,
                    "output_tokens": 1,
                    "service_tier": "standard",
                },
            },
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    for text in texts:
        events.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
    if error_after is not None:
        events = events[: error_after]
        events.append({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        return events
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        },
        {"type": "message_stop"},
    ]
    return events


class Body(http.SyncByteStream, http.AsyncByteStream):
    """A network-like body, delivered in chunks and read lazily (sync or async), as a socket would."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Any:
        yield from self.chunks

    async def __aiter__(self) -> Any:
        for chunk in self.chunks:
            yield chunk


class Server:
    """The provider side: records every request and answers with JSON or SSE."""

    def __init__(self, body: Any = None, *, status: int = 200, events: list[dict[str, Any]] | None = None) -> None:
        self.requests: list[http.Request] = []
        self.body = body if body is not None else message_json()
        self.status = status
        self.events = events

    def __call__(self, request: http.Request) -> http.Response:
        self.requests.append(request)
        payload = json.loads(request.content or b"{}")
        headers = {"request-id": f"req_{len(self.requests):04d}"}
        if self.events is not None and (payload.get("stream") or request.url.path.endswith("invoke-with-response-stream")):
            chunks = [sse([event]) for event in self.events]
            return http.Response(self.status, stream=Body(chunks), headers={**headers, "content-type": "text/event-stream"})
        body = {"input_tokens": 14} if request.url.path.endswith("count_tokens") else self.body
        return http.Response(self.status, stream=Body([json.dumps(body).encode()]), headers={**headers, "content-type": "application/json"})

    @property
    def sent(self) -> list[dict[str, Any]]:
        return [json.loads(request.content or b"{}") for request in self.requests]


@pytest.fixture(scope="session", autouse=True)
def instrumented() -> Any:
    """The plugin patched into the real SDK for the session (restored afterwards)."""
    from genops_instrumentation_anthropic import AnthropicInstrumentor

    instrumentor = AnthropicInstrumentor()
    instrumentor.instrument()
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture(name="http")
def http_library() -> Any:
    """The SDK's HTTP library module (httpx2 or httpx), for tests that build their own transports."""
    return http


@pytest.fixture
def raw_response_class() -> Any:
    """What ``with_raw_response`` returns bare: ``APIResponse`` from anthropic 1.0, ``LegacyAPIResponse`` in 0.x."""
    import anthropic

    legacy = getattr(getattr(anthropic, "_legacy_response", None), "LegacyAPIResponse", None)
    return legacy or anthropic.APIResponse


@pytest.fixture
def settings() -> config.Settings:
    """Default settings, independent of the test process's environment."""
    return config.Settings()


@pytest.fixture
def make_client() -> Callable[..., Any]:
    """Build a real SDK client on a MockTransport: make_client(server, cls=anthropic.Anthropic, **kwargs)."""

    def build(server: Server, cls: Any = None, **kwargs: Any) -> Any:
        import anthropic

        cls = cls or anthropic.Anthropic
        is_async = cls.__name__.startswith("Async")
        client = (http.AsyncClient if is_async else http.Client)(transport=http.MockTransport(server))
        if "api_key" not in kwargs and "Bedrock" not in cls.__name__ and "Vertex" not in cls.__name__:
            kwargs["api_key"] = "sk-ant-test"
        kwargs.setdefault("max_retries", 0)
        return cls(http_client=client, **kwargs)

    return build


class FixedGovernor(Governor):
    """A governor that answers every call with one decision and records what it saw."""

    active = True

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.requests: list[Any] = []
        self.settled: list[tuple[float | None, bool]] = []

    def decide(self, request: Any, attribution: Any) -> Ticket:
        self.requests.append(request)
        return Ticket(decision=self.decision, attributes={semconv.GENOPS_POLICY_RESULT: self.decision.result})

    def settle(self, ticket: Ticket, actual_cost: float | None, ran: bool) -> None:
        self.settled.append((actual_cost, ran))
        return None


BUDGET_BLOCK = Decision(
    result=semconv.RESULT_BLOCKED,
    policy_name="budget:team=search",
    reason_code=semconv.REASON_BUDGET_EXCEEDED,
    message="team search spent its 50 USD/day budget",
)
MODEL_BLOCK = Decision(
    result=semconv.RESULT_BLOCKED,
    policy_name="models",
    reason_code=semconv.REASON_POLICY_DENY_MODEL,
    message="model claude-opus-4-1 is not allowed",
)
ALLOW = Decision()


@pytest.fixture
def governor_for() -> Callable[[Decision], FixedGovernor]:
    return FixedGovernor


@pytest.fixture
def decisions() -> dict[str, Decision]:
    return {"budget": BUDGET_BLOCK, "model": MODEL_BLOCK, "allow": ALLOW}


def only_span(recorded: Any) -> Any:
    spans = recorded.spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


@pytest.fixture
def one_span() -> Callable[[Any], Any]:
    return only_span


@pytest.fixture
def sse_server() -> Callable[..., Server]:
    def build(**kwargs: Any) -> Server:
        return Server(events=stream_events(**kwargs))

    return build


@pytest.fixture
def json_server() -> Callable[..., Server]:
    def build(status: int = 200, **kwargs: Any) -> Server:
        return Server(message_json(**kwargs), status=status)

    return build


def aws_event_stream(events: list[dict[str, Any]]) -> list[bytes]:
    """Bedrock's invoke-with-response-stream body: one AWS event-stream frame per Messages event."""
    import base64
    import struct
    import zlib

    frames = []
    for event in events:
        payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()}).encode()
        headers = b""
        for name, value in ((":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event")):
            headers += bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value)) + value.encode()
        total = 12 + len(headers) + len(payload) + 4
        prelude = struct.pack(">II", total, len(headers))
        prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
        body = prelude + headers + payload
        frames.append(body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF))
    return frames


class BedrockServer(Server):
    """bedrock-runtime: /model/{id}/invoke (JSON) and /invoke-with-response-stream (event stream)."""

    def __call__(self, request: http.Request) -> http.Response:
        self.requests.append(request)
        if request.url.path.endswith("invoke-with-response-stream"):
            return http.Response(200, stream=Body(aws_event_stream(self.events or [])), headers={"content-type": "application/vnd.amazon.eventstream"})
        return http.Response(200, stream=Body([json.dumps(self.body).encode()]), headers={"content-type": "application/json"})


@pytest.fixture
def bedrock_server() -> Callable[..., Server]:
    def build(model: str, **kwargs: Any) -> Server:
        return BedrockServer(message_json(model=model, **kwargs), events=stream_events(model=model, **kwargs_for_stream(kwargs)))

    return build


def kwargs_for_stream(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in kwargs.items() if key in ("input_tokens", "output_tokens")}
