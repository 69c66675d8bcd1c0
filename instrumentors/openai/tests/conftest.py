"""Shared fixtures: a fake OpenAI server behind an httpx MockTransport, the instrumentor, capture.

The fake server answers like api.openai.com: JSON bodies and SSE streams shaped as recorded from
the real API, the usage chunk only when ``stream_options.include_usage`` is asked for (and then
``"usage": null`` on every other chunk, as the real API does), OpenAI error bodies.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx
import openai
import pytest

from genops_autoinstrument import config
from genops_autoinstrument.governance.decisions import Decision
from genops_autoinstrument.governance.governor import Governor, Ticket
from genops_autoinstrument.api.testing import capture
from genops_instrumentation_openai import OpenAIInstrumentor

API_KEY = "sk-test-DO-NOT-RECORD-1234567890"

CHAT_USAGE = {
    "prompt_tokens": 1234,
    "completion_tokens": 56,
    "total_tokens": 1290,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
}


def chat_completion(content: str | None = "Hello! How can I help you today?", **overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    body = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": CHAT_USAGE,
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }
    body.update(overrides)
    return body


def chat_chunks(texts: tuple[str, ...] = ("Hel", "lo", " there", "!"), finish: str = "stop") -> list[dict[str, Any]]:
    base = {"id": "chatcmpl-AxFtB6Z3YhS2dmkqBm6bzXeJwlQ9p", "object": "chat.completion.chunk", "created": 1738606833, "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_72ed7ab54c"}
    chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}]}]
    chunks += [{**base, "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}]} for text in texts]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]})
    return chunks


STREAM_USAGE = {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25, "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


def sse(events: list[dict[str, Any]], named: bool = False, done: bool = True) -> bytes:
    out = []
    for event in events:
        if named:
            out.append(f"event: {event['type']}\n")
        out.append(f"data: {json.dumps(event)}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


class FakeOpenAI:
    """Routes by path; records each request (method, path, headers, JSON body) it served."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.routes: dict[str, Callable[[dict[str, Any]], httpx.Response]] = {}

    def json(self, path: str, body: dict[str, Any], status: int = 200) -> None:
        self.routes[path] = lambda request: httpx.Response(status, json=body, headers={"x-request-id": "req_123"})

    def error(self, path: str, status: int, error: dict[str, Any]) -> None:
        self.json(path, {"error": error}, status)

    def chat_stream(
        self,
        path: str = "/v1/chat/completions",
        chunks: list[dict[str, Any]] | None = None,
        usage: dict[str, Any] | None = None,
        unasked: bool = False,
        marks: bool = True,
    ) -> None:
        """An SSE chat stream. Asked for usage, the server marks every chunk ``"usage": null`` (as
        OpenAI does; ``marks=False``: as vLLM or Ollama do, without the mark) and adds the usage
        chunk; ``unasked=True``: it sends that usage chunk, unmarked, whatever the request says."""
        chunks = chunks or chat_chunks()
        usage = usage or STREAM_USAGE

        def respond(request: dict[str, Any]) -> httpx.Response:
            include = (request["json"].get("stream_options") or {}).get("include_usage") is True
            mark = include and marks and not unasked
            events = [dict(chunk, usage=None) if mark else chunk for chunk in chunks]
            if include or unasked:
                events.append({**{k: chunks[0][k] for k in ("id", "object", "created", "model", "service_tier", "system_fingerprint") if k in chunks[0]}, "choices": [], "usage": usage})
            return httpx.Response(200, content=sse(events), headers={"content-type": "text/event-stream"})

        self.routes[path] = respond

    def events(self, path: str, events: list[dict[str, Any]]) -> None:
        self.routes[path] = lambda request: httpx.Response(200, content=sse(events, named=True, done=False), headers={"content-type": "text/event-stream"})

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        record = {"method": request.method, "path": request.url.path, "host": request.url.host, "headers": dict(request.headers), "json": body, "size": len(request.content)}
        self.requests.append(record)
        route = self.routes.get(request.url.path)
        if route is None:
            return httpx.Response(404, json={"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}})
        return route(record)

    def client(self, base_url: str | None = None, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(api_key=API_KEY, base_url=base_url, http_client=httpx.Client(transport=httpx.MockTransport(self.handler)), **kwargs)

    def async_client(self, base_url: str | None = None, **kwargs: Any) -> openai.AsyncOpenAI:
        kwargs.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url, http_client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler)), **kwargs)


class BlockingGovernor(Governor):
    """Answers every call with one fixed decision."""

    active = True

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.settled: list[tuple[float | None, bool]] = []

    def decide(self, request: Any, attribution: Any) -> Ticket:
        return Ticket(decision=self.decision)

    def settle(self, ticket: Ticket, actual_cost: float | None, ran: bool) -> None:
        self.settled.append((actual_cost, ran))
        return None


@pytest.fixture(autouse=True)
def _forget_unmarked_servers():
    """Servers remembered as answering without the usage mark are per process: per test here."""
    from genops_instrumentation_openai._streams import _UNMARKED

    _UNMARKED.clear()
    yield
    _UNMARKED.clear()


def chat_helpers(client: Any) -> Any:
    """``client.chat.completions`` where it has ``parse``/``stream`` (openai >= 1.92 keeps them
    there too), else ``client.beta.chat.completions`` (openai 1.40 has them only there)."""
    resource = client.chat.completions
    return resource if hasattr(resource, "stream") else client.beta.chat.completions


@pytest.fixture
def instrumentor():
    instance = OpenAIInstrumentor()
    instance.instrument()
    yield instance
    instance.uninstrument()


@pytest.fixture
def settings(monkeypatch) -> config.Settings:
    monkeypatch.delenv("GENOPS_OPENAI_STREAM_USAGE", raising=False)
    return config.load({})


@pytest.fixture
def rec(instrumentor, settings):
    with capture(settings) as recorded:
        yield recorded


@pytest.fixture
def server() -> FakeOpenAI:
    return FakeOpenAI()


def one_span(recorded: Any) -> Any:
    spans = recorded.spans()
    assert len(spans) == 1, [s.name for s in spans]
    return spans[0]


def all_attribute_text(span: Any) -> str:
    return json.dumps({k: v if isinstance(v, (str, int, float, bool)) else list(v) for k, v in span.attributes.items()}) + json.dumps(
        [dict(e.attributes or {}) for e in span.events], default=str
    )


@pytest.fixture
def h() -> Any:
    """Helpers for the tests (test modules must not import each other or this file)."""
    import types

    return types.SimpleNamespace(
        API_KEY=API_KEY,
        CHAT_USAGE=CHAT_USAGE,
        STREAM_USAGE=STREAM_USAGE,
        chat_completion=chat_completion,
        chat_chunks=chat_chunks,
        sse=sse,
        one_span=one_span,
        all_attribute_text=all_attribute_text,
        BlockingGovernor=BlockingGovernor,
        FakeOpenAI=FakeOpenAI,
        chat_helpers=chat_helpers,
    )
