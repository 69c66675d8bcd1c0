"""Shared fixtures: the OpenAI Agents SDK on the real OpenAI SDK against a local endpoint (an httpx
transport answering like api.openai.com's Responses and Chat Completions APIs, tool calls
included), the OpenAI and Agents SDK plugins instrumented, and the real OpenTelemetry SDK.

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool (arguments from ``tool_arguments``), and any other request with text; each answer's
usage is fixed by its kind, so tokens and cost are exact. The SDK's own trace exporter stays
registered, as in any application; without ``OPENAI_API_KEY`` it sends nothing.
"""

from __future__ import annotations

import json
import threading
import types
from typing import Any

import httpx2
import pytest

from genops_autoinstrument import config
from genops_autoinstrument.api.testing import capture
from genops_instrumentation_openai import OpenAIInstrumentor
from genops_instrumentation_openai_agents import OpenAIAgentsInstrumentor

API_KEY = "sk-test-DO-NOT-RECORD-1234567890"
BASE_URL = "http://127.0.0.1:8765/v1"  # answered by the transport below
MODEL = "gpt-4o-mini"
SNAPSHOT = "gpt-4o-mini-2024-07-18"  # what the API answers with; genai-prices knows it
INPUT_PRICE = 0.15 / 1_000_000  # gpt-4o-mini list prices (USD per token), as genai-prices has them
OUTPUT_PRICE = 0.60 / 1_000_000
TEXT_USAGE = (24, 9)  # (input, output) of a text answer
TOOL_USAGE = (81, 18)  # of an answer that calls a tool


def cost(tokens: tuple[int, int]) -> float:
    return tokens[0] * INPUT_PRICE + tokens[1] * OUTPUT_PRICE


class Endpoint:
    """A local /v1/responses and /v1/chat/completions; records every request body (thread-safe)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.tool_arguments: dict[str, Any] = {"city": "Paris"}
        self.reply = "It is 18°C and sunny in Paris."
        self.failures: list[int] = []  # statuses to answer the next requests with, first first
        self._lock = threading.Lock()

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content) if request.content else {}
        with self._lock:
            self.requests.append(body)
            number = len(self.requests)
            failure = self.failures.pop(0) if self.failures else None
        headers = {"x-request-id": f"req_{number}"}
        if failure is not None:  # as api.openai.com answers a rate limit
            error = {"message": "Rate limit reached for gpt-4o-mini. Please try again in 20ms.", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
            return httpx2.Response(failure, json={"error": error}, headers=headers)
        if request.url.path == "/v1/responses":
            return httpx2.Response(200, json=self._response(body, number), headers=headers)
        if request.url.path == "/v1/chat/completions":
            completion = self._completion(body, number)
            if body.get("stream"):
                events = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in _chunks(completion, body)) + b"data: [DONE]\n\n"
                return httpx2.Response(200, content=events, headers={**headers, "content-type": "text/event-stream; charset=utf-8"})
            return httpx2.Response(200, json=completion, headers=headers)
        return httpx2.Response(404, json={"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}})

    def _response(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        items = body.get("input") if isinstance(body.get("input"), list) else []
        answered = any(isinstance(item, dict) and item.get("type") == "function_call_output" for item in items)
        if body.get("tools") and not answered:
            call_id = f"call_Qx7Lm2Vt{number:04d}"
            output = [{"id": f"fc_68af{number:04d}", "type": "function_call", "status": "completed", "call_id": call_id, "name": body["tools"][0]["name"], "arguments": json.dumps(self.tool_arguments)}]
            tokens = TOOL_USAGE
        else:
            content = [{"type": "output_text", "annotations": [], "logprobs": [], "text": self.reply if answered else "Hello."}]
            output = [{"id": f"msg_68af{number:04d}", "type": "message", "status": "completed", "role": "assistant", "content": content}]
            tokens = TEXT_USAGE
        usage = {
            "input_tokens": tokens[0],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": tokens[1],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": sum(tokens),
        }
        return {
            "id": f"resp_68af4c2e9b{number:05d}",
            "object": "response",
            "created_at": 1741569952,
            "status": "completed",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": SNAPSHOT,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools", []),
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
        }

    def _completion(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        messages = body.get("messages") or []
        answered = any(message.get("role") == "tool" for message in messages)
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if body.get("tools") and not answered:
            function = {"name": body["tools"][0]["function"]["name"], "arguments": json.dumps(self.tool_arguments)}
            message.update(content=None, tool_calls=[{"id": f"call_Qx7Lm2Vt{number:04d}", "type": "function", "function": function}])
            finish, tokens = "tool_calls", TOOL_USAGE
        else:
            message["content"] = self.reply if answered else "Hello."
            finish, tokens = "stop", TEXT_USAGE
        usage = {
            "prompt_tokens": tokens[0],
            "completion_tokens": tokens[1],
            "total_tokens": sum(tokens),
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }
        return {
            "id": f"chatcmpl-B9MBs8CjcvOU2jLn4n570S{number:05d}",
            "object": "chat.completion",
            "created": 1741569952,
            "model": SNAPSHOT,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306",
        }

    def client(self, **kwargs: Any) -> Any:
        from openai import AsyncOpenAI

        kwargs.setdefault("max_retries", 0)
        return AsyncOpenAI(api_key=API_KEY, base_url=BASE_URL, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self.handler)), **kwargs)

    def model(self, api: str = "responses", **kwargs: Any) -> Any:
        from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel

        factory = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
        return factory(model=MODEL, openai_client=self.client(**kwargs))


def _chunks(completion: dict[str, Any], body: dict[str, Any]) -> list[dict[str, Any]]:
    """A completion as the API streams it: the role, the content or tool call, the finish, then
    the usage chunk when ``stream_options.include_usage`` asks for it (``usage: null`` before)."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {key: completion[key] for key in ("id", "created", "model", "service_tier", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    message, finish = completion["choices"][0]["message"], completion["choices"][0]["finish_reason"]
    delta: dict[str, Any] = {"content": message["content"]} if message["content"] else {"tool_calls": [{"index": 0, **message["tool_calls"][0]}]}
    deltas = [({"role": "assistant", "content": "", "refusal": None}, None), (delta, None), ({}, finish)]
    chunks = [{**base, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": f}], **({"usage": None} if include_usage else {})} for d, f in deltas]
    if include_usage:
        chunks.append({**base, "choices": [], "usage": completion["usage"]})
    return chunks


@pytest.fixture(autouse=True)
def _no_trace_export(monkeypatch):
    """The SDK's own exporter stays registered but has no key: it sends nothing off the machine."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
def instrumented():
    """The OpenAI and Agents SDK plugins, as genops-run activates them."""
    openai_plugin = OpenAIInstrumentor()
    agents_plugin = OpenAIAgentsInstrumentor()
    openai_plugin.instrument()
    agents_plugin.instrument()
    yield
    agents_plugin.uninstrument()
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
