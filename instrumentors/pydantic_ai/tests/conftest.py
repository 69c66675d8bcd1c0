"""Shared fixtures: a pydantic-ai agent on its OpenAI chat model, on the real OpenAI SDK against a
local chat-completions endpoint (an httpx transport answering like api.openai.com, tool calls
included), the OpenAI and pydantic-ai plugins instrumented as genops-run activates them, and the
real OpenTelemetry SDK (``capture``).

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool, and any other request with text; each answer's usage is fixed by its kind, so tokens
and cost are exact.
"""

from __future__ import annotations

import json
import threading
import types
from typing import Any, Iterator

import httpx
import pytest

from genops_autoinstrument import config
from genops_autoinstrument.api.testing import capture
from genops_instrumentation_openai import OpenAIInstrumentor
from genops_instrumentation_pydantic_ai import PydanticAIInstrumentor

API_KEY = "sk-test-DO-NOT-RECORD-1234567890"
MODEL = "gpt-4o-mini"
SNAPSHOT = "gpt-4o-mini-2024-07-18"
INPUT_PRICE = 0.15 / 1_000_000  # gpt-4o-mini list prices (USD per token), as genai-prices has them
OUTPUT_PRICE = 0.60 / 1_000_000
TEXT_USAGE = (24, 9)
TOOL_USAGE = (81, 18)


def cost(tokens: tuple[int, int]) -> float:
    return tokens[0] * INPUT_PRICE + tokens[1] * OUTPUT_PRICE


def _sse(completion: dict[str, Any]) -> bytes:
    """A completion as the chunks the API streams: the message as one delta, the finish, the usage."""
    choice = completion["choices"][0]
    message = {key: value for key, value in choice["message"].items() if key in ("role", "content", "tool_calls")}
    if message.get("tool_calls"):
        message["tool_calls"] = [{"index": 0, **call} for call in message["tool_calls"]]
    base = {key: completion[key] for key in ("id", "created", "model", "system_fingerprint")} | {"object": "chat.completion.chunk"}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": message, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}]},
        {**base, "choices": [], "usage": completion["usage"]},
    ]
    return b"".join(f"data: {json.dumps(chunk)}\n\n".encode() for chunk in chunks) + b"data: [DONE]\n\n"


class Endpoint:
    """A local /v1/chat/completions; records every request body it was sent (thread-safe)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        with self._lock:
            self.requests.append(body)
            number = len(self.requests)
        messages = body.get("messages") or []
        answered = any(m.get("role") == "tool" for m in messages)
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if body.get("tools") and not answered:
            tool = body["tools"][0]["function"]["name"]
            call = {"id": f"call_Qx7Lm2Vt{number:04d}", "type": "function", "function": {"name": tool, "arguments": json.dumps({"city": "Paris"})}}
            message.update(content=None, tool_calls=[call])
            finish, tokens = "tool_calls", TOOL_USAGE
        else:
            message["content"] = "It is 18°C and sunny in Paris."
            finish, tokens = "stop", TEXT_USAGE
        completion = {
            "id": f"chatcmpl-B9MBs8CjcvOU2jLn4n570S{number:05d}",
            "object": "chat.completion",
            "created": 1741569952,
            "model": SNAPSHOT,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)},
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306",
        }
        if body.get("stream"):
            return httpx.Response(200, content=_sse(completion), headers={"content-type": "text/event-stream", "x-request-id": f"req_{number}"})
        return httpx.Response(200, json=completion, headers={"x-request-id": f"req_{number}"})

    def model(self, **client_options: Any) -> Any:
        """pydantic-ai's OpenAI chat model on an AsyncOpenAI client (the SDK's default retries unless told)."""
        import openai
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        client = openai.AsyncOpenAI(api_key=API_KEY, http_client=httpx.AsyncClient(transport=httpx.MockTransport(self.handler)), **client_options)
        return OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=client))

    def agent(self, name: str = "weather", **options: Any) -> Any:
        """An agent with one tool: a run makes two model calls (the tool call, then the answer)."""
        from pydantic_ai import Agent

        agent = Agent(self.model(), name=name, instructions="Answer weather questions with the tool.", **options)

        @agent.tool_plain
        def get_weather(city: str) -> str:
            """The current weather in a city."""
            return f"18°C and sunny in {city}"

        return agent


@pytest.fixture
def instrumented() -> Iterator[None]:
    """The OpenAI and pydantic-ai plugins, as genops-run activates them."""
    openai_plugin = OpenAIInstrumentor()
    pydantic_ai_plugin = PydanticAIInstrumentor()
    openai_plugin.instrument()
    pydantic_ai_plugin.instrument()
    yield
    pydantic_ai_plugin.uninstrument()
    openai_plugin.uninstrument()


@pytest.fixture
def settings() -> config.Settings:
    return config.load({"GENOPS_TEAM": "search"})


@pytest.fixture
def rec(instrumented: None, settings: config.Settings) -> Iterator[Any]:
    with capture(settings) as recorded:
        yield recorded


@pytest.fixture
def endpoint() -> Endpoint:
    return Endpoint()


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
    return types.SimpleNamespace(MODEL=MODEL, SNAPSHOT=SNAPSHOT, TEXT_USAGE=TEXT_USAGE, TOOL_USAGE=TOOL_USAGE, cost=cost, tree=tree)
