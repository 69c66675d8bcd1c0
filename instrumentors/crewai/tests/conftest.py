"""Shared fixtures: CrewAI's native OpenAI LLM (``LLM(model="gpt-4o-mini", base_url=...)``, on the
real OpenAI SDK) against a local chat-completions endpoint on a real socket (CrewAI builds its own
OpenAI clients), both plugins instrumented, and the real OpenTelemetry SDK (``capture``).

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool, and any other request with text; each answer's usage is fixed by its kind, so tokens
and cost are exact. ``status`` makes it answer every request with that error status instead.

CrewAI sends anonymous telemetry to telemetry.crewai.com unless told not to: the tests tell it
(``CREWAI_DISABLE_TELEMETRY``, ``CREWAI_TRACING_ENABLED``) before CrewAI is imported.
"""

from __future__ import annotations

import json
import os
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

from genops_autoinstrument import config  # noqa: E402
from genops_autoinstrument.api.testing import capture  # noqa: E402
from genops_autoinstrument.api.testing_openai import by_name, tree  # noqa: E402
from genops_instrumentation_crewai import CrewAIInstrumentor  # noqa: E402
from genops_instrumentation_openai import OpenAIInstrumentor  # noqa: E402

API_KEY = "sk-test-DO-NOT-RECORD-1234567890"
MODEL = "gpt-4o-mini"
SNAPSHOT = "gpt-4o-mini-2024-07-18"  # what the API answers with; genai-prices knows it
INPUT_PRICE = 0.15 / 1_000_000  # gpt-4o-mini list prices (USD per token), as genai-prices has them
OUTPUT_PRICE = 0.60 / 1_000_000
TEXT_USAGE = (24, 9)  # (prompt, completion) of a text answer
TOOL_USAGE = (81, 18)  # of an answer that calls a tool
REPLY = "It is 18°C and sunny in Paris."


def cost(tokens: tuple[int, int]) -> float:
    return tokens[0] * INPUT_PRICE + tokens[1] * OUTPUT_PRICE


def _completion(body: dict[str, Any], number: int) -> dict[str, Any]:
    messages = body.get("messages") or []
    answered = any(m.get("role") == "tool" for m in messages)
    message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
    if body.get("tools") and not answered:
        call = {"id": f"call_Qx7Lm2Vt{number:04d}", "type": "function", "function": {"name": body["tools"][0]["function"]["name"], "arguments": '{"city": "Paris"}'}}
        message.update(content=None, tool_calls=[call])
        finish, tokens = "tool_calls", TOOL_USAGE
    else:
        message["content"] = REPLY
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
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


class Endpoint:
    """A local /v1/chat/completions on a real socket; records every request body it was sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status: int | None = None  # answer requests with this error status…
        self.failures = 0  # …this many of them (the first ones)
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                with endpoint._lock:
                    endpoint.requests.append(body)
                    number = len(endpoint.requests)
                status, payload = endpoint._answer(self.path, body, number)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("x-request-id", f"req_{number}")
                self.send_header("retry-after", "0")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/v1"

    def _answer(self, path: str, body: dict[str, Any], number: int) -> tuple[int, dict[str, Any]]:
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}}
        if self.status is not None and number <= self.failures:
            return self.status, {"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
        return 200, _completion(body, number)

    def __enter__(self) -> "Endpoint":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def llm(self, **kwargs: Any) -> Any:
        from crewai import LLM

        return LLM(model=MODEL, api_key=API_KEY, base_url=self.url, **kwargs)


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    with Endpoint() as running:
        yield running


@pytest.fixture
def instrumented() -> Iterator[None]:
    """The OpenAI and CrewAI plugins, as genops-run activates them."""
    openai_plugin = OpenAIInstrumentor()
    crewai_plugin = CrewAIInstrumentor()
    openai_plugin.instrument()
    crewai_plugin.instrument()
    yield
    crewai_plugin.uninstrument()
    openai_plugin.uninstrument()


@pytest.fixture
def rec(instrumented: None) -> Iterator[Any]:
    with capture(config.load({})) as recorded:
        yield recorded


def refused_decisions(recorded: Any) -> float:
    return sum(point.value for dims, point in recorded.metrics().get("genops.policy.decisions", []) if dims.get("genops.policy.result") == "BLOCKED")


@pytest.fixture
def h() -> Any:
    """Helpers for the tests (test modules must not import each other or this file)."""
    return types.SimpleNamespace(
        MODEL=MODEL, REPLY=REPLY, TEXT_USAGE=TEXT_USAGE, TOOL_USAGE=TOOL_USAGE, cost=cost, by_name=by_name, tree=tree, refused_decisions=refused_decisions
    )
