"""Shared fixtures: Haystack's OpenAIChatGenerator on the real OpenAI SDK against a local
chat-completions endpoint (an httpx transport answering like api.openai.com, tool calls included),
both plugins instrumented, and the real OpenTelemetry SDK (``capture``).

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool (arguments from ``tool_arguments``), and any other request with text; each answer's
usage is fixed by its kind, so tokens and cost are exact.
"""

from __future__ import annotations

import json
import threading
import types
from typing import Any

import os

import httpx
import pytest

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # Haystack's usage telemetry: no network in tests

from genops_autoinstrument import config
from genops_autoinstrument.api.testing import capture
from genops_instrumentation_haystack import HaystackInstrumentor
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
        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        answered = any(m.get("role") == "tool" for m in messages)
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if body.get("tools") and not answered:
            tool = body["tools"][0]["function"]["name"]
            call = {"id": f"call_Qx7Lm2Vt{number:04d}", "type": "function", "function": {"name": tool, "arguments": json.dumps(self.tool_arguments)}}
            message.update(content=None, tool_calls=[call])
            finish, tokens = "tool_calls", TOOL_USAGE
        else:
            text = self.reply if answered else f"Echo: {last_user.get('content')}"
            message["content"] = text if isinstance(text, str) else json.dumps(text)
            finish, tokens = "stop", TEXT_USAGE
        completion = {
            "id": f"chatcmpl-B9MBs8CjcvOU2jLn4n570S{number:05d}",
            "object": "chat.completion",
            "created": 1741569952,
            "model": SNAPSHOT,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage(*tokens),
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306",
        }
        return httpx.Response(200, json=completion, headers={"x-request-id": f"req_{number}"})

    def generator(self, **kwargs: Any) -> Any:
        """Haystack's OpenAIChatGenerator sending to this endpoint (Haystack's default retries unless given)."""
        from haystack.components.generators.chat import OpenAIChatGenerator
        from haystack.utils import Secret

        return OpenAIChatGenerator(
            model=MODEL,
            api_key=Secret.from_token(API_KEY),
            api_base_url="http://localhost.test/v1",
            http_client_kwargs={"transport": httpx.MockTransport(self.handler)},
            **kwargs,
        )


@pytest.fixture
def instrumented():
    """The OpenAI and Haystack plugins, as genops-run activates them."""
    openai_plugin = OpenAIInstrumentor()
    haystack_plugin = HaystackInstrumentor()
    openai_plugin.instrument()
    haystack_plugin.instrument()
    yield
    haystack_plugin.uninstrument()
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
