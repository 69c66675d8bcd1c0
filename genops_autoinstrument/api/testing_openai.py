"""Test support for plugins that sit on the OpenAI SDK: a local api.openai.com as an httpx (or
httpx2) transport, so a framework's own OpenAI client runs unchanged against realistic answers.

``OpenAIEndpoint`` answers /v1/chat/completions (JSON, or Server-Sent Events with the usage chunk
when ``stream_options.include_usage`` asks for it) and /v1/responses: a request that offers tools
and has no tool result yet gets a call of its first tool (``tool_arguments``), any other request
text. Each answer's usage is fixed by its kind (``TEXT_USAGE``, ``TOOL_USAGE``) so tokens and cost
are exact. Every request body is kept in ``requests``; ``failures`` scripts error statuses.
Nothing here is imported at module import time beyond the standard library.
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
import types
from typing import Any, Iterable

API_KEY = "sk-test-DO-NOT-RECORD-1234567890"
BASE_URL = "http://127.0.0.1:8765/v1"  # answered by the transport, never dialled
MODEL = "gpt-4o-mini"
SNAPSHOT = "gpt-4o-mini-2024-07-18"  # what the API answers with; genai-prices knows it
INPUT_PRICE = 0.15 / 1_000_000  # gpt-4o-mini list prices (USD per token), as genai-prices has them
OUTPUT_PRICE = 0.60 / 1_000_000
TEXT_USAGE = (24, 9)  # (input, output) tokens of a text answer
TOOL_USAGE = (81, 18)  # of an answer that calls a tool
REPLY = "It is 18°C and sunny in Paris."
_NOT_FOUND = {"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": None}}
_RATE_LIMITED = {"message": "Rate limit reached for gpt-4o-mini. Please try again in 20ms.", "type": "requests", "param": None, "code": "rate_limit_exceeded"}


def cost(tokens: tuple[int, int]) -> float:
    """The list price of (input, output) tokens of ``MODEL``."""
    return tokens[0] * INPUT_PRICE + tokens[1] * OUTPUT_PRICE


def chat_usage(tokens: tuple[int, int]) -> dict[str, Any]:
    return {
        "prompt_tokens": tokens[0],
        "completion_tokens": tokens[1],
        "total_tokens": sum(tokens),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def _last_user(messages: list[dict[str, Any]]) -> str:
    content = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
    return content if isinstance(content, str) else " ".join(str(part.get("text", "")) for part in content or [])


def _sse(data: Any) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


class OpenAIEndpoint:
    """A local /v1/chat/completions and /v1/responses; records every request body (thread-safe).

    ``first_reply`` is the text of an answer to a request with no tool result (``None``: "Echo: "
    and the user's last message); ``reply`` answers one that has a tool result.
    """

    def __init__(self, reply: str = REPLY, first_reply: str | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.tool_arguments: dict[str, Any] = {"city": "Paris"}
        self.reply = reply
        self.first_reply = first_reply
        self.failures: list[int] = []  # statuses to answer the next requests with, first first
        self._lock = threading.Lock()

    def transport(self, library: str = "httpx") -> Any:
        """A ``MockTransport`` of ``library`` (httpx or httpx2) answering with this endpoint."""
        return importlib.import_module(library).MockTransport(self.handler)

    def handler(self, request: Any) -> Any:
        """Answer one httpx/httpx2 request (a response of the request's own library)."""
        response = sys.modules[type(request).__module__.split(".")[0]].Response
        body = json.loads(request.content) if request.content else {}
        with self._lock:
            self.requests.append(body)
            number = len(self.requests)
            failure = self.failures.pop(0) if self.failures else None
        headers = {"x-request-id": f"req_{number}"}
        if failure is not None:  # as api.openai.com answers a rate limit
            return response(failure, json={"error": _RATE_LIMITED}, headers=headers)
        if request.url.path == "/v1/responses":
            return response(200, json=self._response(body, number), headers=headers)
        if request.url.path != "/v1/chat/completions":
            return response(404, json=_NOT_FOUND, headers=headers)
        completion = self._completion(body, number)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            stream = "".join(_chunks(completion, include_usage))
            return response(200, content=stream.encode(), headers={**headers, "content-type": "text/event-stream; charset=utf-8"})
        return response(200, json=completion, headers=headers)

    def _text(self, answered: bool, question: str) -> str:
        if answered:
            return self.reply
        return self.first_reply if self.first_reply is not None else f"Echo: {question}"

    def _completion(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        messages = body.get("messages") or []
        answered = any(m.get("role") == "tool" for m in messages)
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if body.get("tools") and not answered:
            function = {"name": body["tools"][0]["function"]["name"], "arguments": json.dumps(self.tool_arguments)}
            message.update(content=None, tool_calls=[{"id": f"call_Qx7Lm2Vt{number:04d}", "type": "function", "function": function}])
            finish, tokens = "tool_calls", TOOL_USAGE
        else:
            message["content"] = self._text(answered, _last_user(messages))
            finish, tokens = "stop", TEXT_USAGE
        return {
            "id": f"chatcmpl-B9MBs8CjcvOU2jLn4n570S{number:05d}",
            "object": "chat.completion",
            "created": 1741569952,
            "model": SNAPSHOT,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": chat_usage(tokens),
            "service_tier": "default",
            "system_fingerprint": "fp_06737a9306",
        }

    def _response(self, body: dict[str, Any], number: int) -> dict[str, Any]:
        items = body.get("input") if isinstance(body.get("input"), list) else []
        answered = any(isinstance(item, dict) and item.get("type") == "function_call_output" for item in items)
        if body.get("tools") and not answered:
            call = {"id": f"fc_68af{number:04d}", "type": "function_call", "status": "completed", "call_id": f"call_Qx7Lm2Vt{number:04d}"}
            output = [{**call, "name": body["tools"][0]["name"], "arguments": json.dumps(self.tool_arguments)}]
            tokens = TOOL_USAGE
        else:
            question = body["input"] if isinstance(body.get("input"), str) else ""
            content = [{"type": "output_text", "annotations": [], "logprobs": [], "text": self._text(answered, question)}]
            output = [{"id": f"msg_68af{number:04d}", "type": "message", "status": "completed", "role": "assistant", "content": content}]
            tokens = TEXT_USAGE
        usage = {"input_tokens": tokens[0], "input_tokens_details": {"cached_tokens": 0}, "output_tokens": tokens[1], "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": sum(tokens)}
        echoed = {key: body.get(key, default) for key, default in (("instructions", None), ("max_output_tokens", None), ("previous_response_id", None), ("store", True), ("tool_choice", "auto"), ("tools", []))}
        return {
            "id": f"resp_68af4c2e9b{number:05d}",
            "object": "response",
            "created_at": 1741569952,
            "status": "completed",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "model": SNAPSHOT,
            "output": output,
            "parallel_tool_calls": True,
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
            **echoed,
        }


def _chunks(completion: dict[str, Any], include_usage: bool) -> list[str]:
    """A chat completion as OpenAI streams it: the role, the content word by word or each tool call
    in two pieces (name, then arguments), the finish, then the usage chunk when asked for."""
    head = {key: completion[key] for key in ("id", "created", "model", "service_tier", "system_fingerprint")}
    message, finish = completion["choices"][0]["message"], completion["choices"][0]["finish_reason"]

    def chunk(delta: dict[str, Any], reason: str | None = None) -> str:
        data = {**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}
        return _sse({**data, "usage": None} if include_usage else data)

    chunks = [chunk({"role": "assistant", "content": None if message.get("tool_calls") else "", "refusal": None})]
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        chunks.append(chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function", "function": {"name": function["name"], "arguments": ""}}]}))
        chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": function["arguments"]}}]}))
    words: Iterable[str] = (message.get("content") or "").split(" ") if message.get("content") else ()
    chunks += [chunk({"content": word if i == 0 else f" {word}"}) for i, word in enumerate(words)]
    chunks.append(chunk({}, finish))
    if include_usage:
        chunks.append(_sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": completion["usage"]}))
    return [*chunks, _sse("[DONE]")]


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


def check_tool_then_text(first: Any, second: Any) -> None:
    """An agent's two chat calls (the tool call, then the answer), exactly counted and priced."""
    import pytest

    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert (first.attributes["gen_ai.usage.input_tokens"], first.attributes["gen_ai.usage.output_tokens"]) == TOOL_USAGE
    assert (second.attributes["gen_ai.usage.input_tokens"], second.attributes["gen_ai.usage.output_tokens"]) == TEXT_USAGE
    assert first.attributes["genops.cost.total"] == pytest.approx(cost(TOOL_USAGE), rel=1e-9)
    assert second.attributes["genops.cost.total"] == pytest.approx(cost(TEXT_USAGE), rel=1e-9)


def check_rolled_up(unit: Any, first: Any, second: Any) -> None:
    """A unit's span: the rolled-up cost and tokens of everything under it, the sum of its two calls."""
    import pytest

    assert unit.attributes["genops.unit.calls"] == 2
    assert unit.attributes["genops.cost.total"] == pytest.approx(first.attributes["genops.cost.total"] + second.attributes["genops.cost.total"], rel=1e-12)
    assert unit.attributes["gen_ai.usage.input_tokens"] == TOOL_USAGE[0] + TEXT_USAGE[0]
    assert unit.attributes["gen_ai.usage.output_tokens"] == TOOL_USAGE[1] + TEXT_USAGE[1]


def check_agent_metrics(metrics: dict[str, Any], agent: str = "weather_agent", units_only: bool = False) -> dict[str, float]:
    """Cost per agent: the agent's name is a dimension of the cost and token metrics of its two
    calls. Returns the unit costs by unit name (``units_only``: of units that are not operations)."""
    import pytest

    costs = {dims["gen_ai.agent.name"]: point.value for dims, point in metrics["genops.cost"]}
    assert costs == {agent: pytest.approx(cost(TOOL_USAGE) + cost(TEXT_USAGE), rel=1e-9)}
    tokens = {(dims["gen_ai.agent.name"], dims["gen_ai.token.type"]): point.sum for dims, point in metrics["gen_ai.client.token.usage"]}
    assert tokens == {(agent, "input"): TOOL_USAGE[0] + TEXT_USAGE[0], (agent, "output"): TOOL_USAGE[1] + TEXT_USAGE[1]}
    return {dims["genops.unit.name"]: point.value for dims, point in metrics["genops.unit.cost"] if not units_only or dims.get("gen_ai.operation.name") is None}


def helpers() -> types.SimpleNamespace:
    """What a framework plugin's tests read about the endpoint's answers, and span helpers."""
    return types.SimpleNamespace(
        MODEL=MODEL,
        SNAPSHOT=SNAPSHOT,
        TEXT_USAGE=TEXT_USAGE,
        TOOL_USAGE=TOOL_USAGE,
        cost=cost,
        by_name=by_name,
        children=children,
        tree=tree,
        check_tool_then_text=check_tool_then_text,
        check_rolled_up=check_rolled_up,
        check_agent_metrics=check_agent_metrics,
    )


def framework_fixtures(*plugins: type, endpoint: type[OpenAIEndpoint] = OpenAIEndpoint, env: dict[str, str] | None = None) -> tuple[Any, ...]:
    """The pytest fixtures a framework plugin's tests share, for its conftest to bind by name:
    ``instrumented, settings, rec, endpoint, h = framework_fixtures(OpenAIInstrumentor, ...)``.

    ``instrumented``: the plugins, as genops-run activates them; ``settings``: ``config.load(env)``;
    ``rec``: ``capture(settings)`` with the plugins on; ``endpoint``: a fresh ``endpoint()``;
    ``h``: ``helpers()``. pytest is imported here, when a conftest asks, never with the kit.
    """
    import pytest

    from genops_autoinstrument import config
    from genops_autoinstrument.api.testing import capture, instrumenting

    @pytest.fixture(name="instrumented")
    def instrumented_fixture() -> Any:
        with instrumenting(*(plugin() for plugin in plugins)):
            yield

    @pytest.fixture(name="settings")
    def settings_fixture() -> config.Settings:
        return config.load(dict(env or {}))

    @pytest.fixture(name="rec")
    def rec_fixture(instrumented: None, settings: config.Settings) -> Any:
        with capture(settings) as recorded:
            yield recorded

    @pytest.fixture(name="endpoint")
    def endpoint_fixture() -> OpenAIEndpoint:
        return endpoint()

    @pytest.fixture(name="h")
    def h_fixture() -> types.SimpleNamespace:
        """Helpers for the tests (test modules must not import each other or the conftest)."""
        return helpers()

    return instrumented_fixture, settings_fixture, rec_fixture, endpoint_fixture, h_fixture
