"""Shared fixtures: LlamaIndex's OpenAI LLM on the real OpenAI SDK against a local chat-completions
endpoint (an httpx transport answering like api.openai.com: JSON or Server-Sent Events, tool calls
included), both plugins instrumented, and the real OpenTelemetry SDK (``capture``).

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool (arguments from ``tool_arguments``), and any other request with text; each answer's
usage is fixed by its kind, so tokens and cost are exact. A stream ends with the usage chunk when
the request asks for it (``stream_options.include_usage``), as OpenAI's does.
"""

from __future__ import annotations

import json
import threading
import types
from typing import Any

import httpx
import pytest

from genops_autoinstrument import config
from genops_autoinstrument.api.testing import capture
from genops_instrumentation_llamaindex import LlamaIndexInstrumentor
from genops_instrumentation_openai import OpenAIInstrumentor

API_KEY = "sk-test-DO-NOT-RECORD-1234567890"
MODEL = "gpt-4o-mini"
SNAPSHOT = "gpt-4o-mini-2024-07-18"  # what the API answers with; genai-prices knows it
# gpt-4o-mini list prices (USD per token), as genai-prices has them.
INPUT_PRICE = 0.15 / 1_000_000
OUTPUT_PRICE = 0.60 / 1_000_000
TEXT_USAGE = (24, 9)  # (prompt, completion) of a text answer
TOOL_USAGE = (81, 18)  # of an answer that calls a tool


def usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def cost(tokens: tuple[int, int]) -> float:
    return tokens[0] * INPUT_PRICE + tokens[1] * OUTPUT_PRICE


def _sse(data: Any) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


class Endpoint:
    """A local /v1/chat/completions; records every request body it was sent (thread-safe)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.tool_arguments: dict[str, Any] = {"city": "Paris"}
        self.reply = "It is 18°C and sunny in Paris."
        self._lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        with self._lock:
            self.requests.append(body)
            number = len(self.requests)
        if request.url.path != "/v1/chat/completions":
            return httpx.Response(404, json={"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}})
        messages = body.get("messages") or []
        answered = any(m.get("role") == "tool" for m in messages)
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if body.get("tools") and not answered:
            tool = body["tools"][0]["function"]["name"]
            call = {"id": f"call_Qx7Lm2Vt{number:04d}", "type": "function", "function": {"name": tool, "arguments": json.dumps(self.tool_arguments)}}
            message.update(content=None, tool_calls=[call])
            finish, tokens = "tool_calls", TOOL_USAGE
        else:
            message["content"] = self.reply if answered or body.get("tools") else f"Echo: {_last_user(messages)}"
            finish, tokens = "stop", TEXT_USAGE
        head = {"id": f"chatcmpl-B9MBs8CjcvOU2jLn4n570S{number:05d}", "created": 1741569952, "model": SNAPSHOT, "service_tier": "default", "system_fingerprint": "fp_06737a9306"}
        headers = {"x-request-id": f"req_{number}"}
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            stream = "".join(_chunks(head, message, finish, usage(*tokens), include_usage))
            return httpx.Response(200, content=stream.encode(), headers={**headers, "content-type": "text/event-stream; charset=utf-8"})
        completion = {**head, "object": "chat.completion", "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}], "usage": usage(*tokens)}
        return httpx.Response(200, json=completion, headers=headers)

    def llm(self, **kwargs: Any) -> Any:
        from llama_index.llms.openai import OpenAI

        transport = httpx.MockTransport(self.handler)
        return OpenAI(model=MODEL, api_key=API_KEY, http_client=httpx.Client(transport=transport), async_http_client=httpx.AsyncClient(transport=transport), **kwargs)


def _last_user(messages: list[dict[str, Any]]) -> str:
    content = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    return content if isinstance(content, str) else " ".join(str(part.get("text", "")) for part in content or [])


def _chunks(head: dict[str, Any], message: dict[str, Any], finish: str, totals: dict[str, Any], include_usage: bool) -> list[str]:
    """A chat completion as OpenAI streams it: role, content words or tool-call pieces, finish, usage."""

    def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
        data = {**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}
        return _sse({**data, "usage": None} if include_usage else data)

    chunks = [chunk({"role": "assistant", "content": None if message.get("tool_calls") else "", "refusal": None})]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function", "function": {"name": function["name"], "arguments": ""}}]}))
        chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": function["arguments"]}}]}))
    words = (message.get("content") or "").split(" ")
    chunks += [chunk({"content": word if i == 0 else f" {word}"}) for i, word in enumerate(words) if message.get("content")]
    chunks.append(chunk({}, finish))
    if include_usage:
        chunks.append(_sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": totals}))
    return [*chunks, _sse("[DONE]")]


@pytest.fixture
def instrumented():
    """The OpenAI and LlamaIndex plugins, as genops-run activates them."""
    openai_plugin = OpenAIInstrumentor()
    llamaindex_plugin = LlamaIndexInstrumentor()
    openai_plugin.instrument()
    llamaindex_plugin.instrument()
    yield
    llamaindex_plugin.uninstrument()
    openai_plugin.uninstrument()


@pytest.fixture
def settings() -> config.Settings:
    return config.load({})


@pytest.fixture
def rec(instrumented, settings):
    with capture(settings) as recorded:
        yield recorded


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint()


def by_name(spans: list[Any], name: str) -> list[Any]:
    return [span for span in spans if span.name == name]


def children(spans: list[Any], parent: Any) -> list[Any]:
    return [span for span in spans if span.parent is not None and span.parent.span_id == parent.context.span_id]


def tree(spans: list[Any]) -> list[str]:
    """The trace as indented span names, children in start order (for readable assertions)."""
    by_parent: dict[Any, list[Any]] = {}
    ids = {span.context.span_id for span in spans}
    for span in sorted(spans, key=lambda s: s.start_time):
        parent = span.parent.span_id if span.parent is not None and span.parent.span_id in ids else None
        by_parent.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: Any, depth: int) -> None:
        for span in by_parent.get(parent, []):
            lines.append("  " * depth + span.name)
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return lines


@pytest.fixture
def h() -> Any:
    """Helpers for the tests (test modules must not import each other or this file)."""
    return types.SimpleNamespace(
        MODEL=MODEL, SNAPSHOT=SNAPSHOT, TEXT_USAGE=TEXT_USAGE, TOOL_USAGE=TOOL_USAGE, cost=cost, by_name=by_name, children=children, tree=tree
    )
