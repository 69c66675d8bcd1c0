"""Running a framework example as a user does: unchanged, under `genops-run`, against the local
endpoint, with the console exporter's spans read back from its output.

The endpoint's chat (or Responses) route is wrapped to answer a request that offers tools and has
no tool result yet with a call of its first tool (streamed when asked), as OpenAI does; every
other request is answered as the endpoint answers it. Loaded by the conftest (the examples'
tests run with --import-mode=importlib and do not import each other).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CALL = {"index": 0, "id": "call_Qx7Lm2Vt0001", "type": "function"}
ARGUMENTS = '{"city": "Paris"}'
CHAT_ROUTE, RESPONSES_ROUTE = r"(?:/v1)?/chat/completions", r"(?:/v1)?/responses"


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def chat_tool_calling(chat_completions: Any, seen: list[dict[str, Any]]) -> Any:
    """The chat route, answering a request with tools and no tool result yet with a call of its
    first tool (streamed when asked); everything else as the endpoint answers it."""

    def handler(body: dict[str, Any], headers: dict[str, str], **params: Any) -> Any:
        seen.append(body)
        messages = body.get("messages") or []
        if not body.get("tools") or any(message.get("role") == "tool" for message in messages):
            return chat_completions(body, headers, **params)
        status, response_headers, payload = chat_completions({**body, "stream": False, "max_tokens": 7}, headers, **params)
        completion = json.loads(payload)
        function = {"name": body["tools"][0]["function"]["name"], "arguments": ARGUMENTS}
        if not body.get("stream"):
            call = {key: value for key, value in CALL.items() if key != "index"}
            message = {"role": "assistant", "content": None, "tool_calls": [{**call, "function": function}], "refusal": None, "annotations": []}
            completion["choices"][0].update(message=message, finish_reason="tool_calls")
            return status, response_headers, json.dumps(completion).encode()
        head = {key: completion[key] for key in ("id", "created", "model", "system_fingerprint")}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _sse({**head, "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], "usage": None})

        stream = [
            chunk({"role": "assistant", "content": None, "refusal": None}),
            chunk({"tool_calls": [{**CALL, "function": {"name": function["name"], "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": function["arguments"]}}]}),
            chunk({}, "tool_calls"),
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            stream.append(_sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": completion["usage"]}))
        stream.append(b"data: [DONE]\n\n")
        return status, {**response_headers, "content-type": "text/event-stream; charset=utf-8"}, iter(stream)

    return handler


def responses_tool_calling(responses: Any, seen: list[dict[str, Any]]) -> Any:
    """The Responses route, answering a request with tools and no tool output yet with a call of
    its first tool; everything else as the endpoint answers it."""

    def handler(body: dict[str, Any], headers: dict[str, str], **params: Any) -> Any:
        seen.append(body)
        items = body.get("input") if isinstance(body.get("input"), list) else []
        if not body.get("tools") or any(isinstance(item, dict) and item.get("type") == "function_call_output" for item in items):
            return responses(body, headers, **params)
        status, response_headers, payload = responses({**body, "max_output_tokens": 7}, headers, **params)
        response = json.loads(payload)
        call = {"id": "fc_68af4c2e9b0001", "type": "function_call", "status": "completed", "call_id": CALL["id"], "name": body["tools"][0]["name"], "arguments": ARGUMENTS}
        response.update(output=[call], status="completed", incomplete_details=None)
        return status, response_headers, json.dumps(response).encode()

    return handler


def console_spans(stdout: str) -> list[dict[str, Any]]:
    """The console exporter's JSON spans among the app's own lines."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (index := stdout.find("\n{", index)) != -1:
        try:
            span, end = decoder.raw_decode(stdout, index + 1)
        except json.JSONDecodeError:
            index += 1
            continue
        if isinstance(span, dict) and "context" in span:
            spans.append(span)
        index = end
    return spans


@dataclass
class ExampleRun:
    """One example's run: the process, its spans, the request bodies the wrapped route saw."""

    result: subprocess.CompletedProcess
    spans: list[dict[str, Any]]
    seen: list[dict[str, Any]] = field(default_factory=list)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [span for span in self.spans if span["name"] == name]

    def clients(self) -> list[dict[str, Any]]:
        return [span for span in self.spans if span["kind"] == "SpanKind.CLIENT"]

    def ancestors(self, span: dict[str, Any]) -> list[str]:
        """The names of the span's ancestors, nearest first."""
        by_id = {each["context"]["span_id"]: each for each in self.spans}
        names = []
        while span.get("parent_id") in by_id:
            span = by_id[span["parent_id"]]
            names.append(span["name"])
        return names


def run_example(server_module: Any, openai_routes: Any, tmp_path: Path, script: str, *, api: str = "chat", drop: Iterable[str] = (), variables: tuple[str, str] = ("OPENAI_BASE_URL", "OPENAI_API_KEY"), **env: str) -> ExampleRun:
    """examples/``script`` under genops-run with the console exporter, the endpoint's URL and key in
    ``variables``, ``env`` added and every variable starting with a ``drop`` prefix removed. The run
    ends cleanly and calls the tool."""
    if not (VENV_BIN / "genops-run").exists():
        pytest.skip("genops-run is not installed next to this interpreter")
    seen: list[dict[str, Any]] = []
    pattern, wrap, original = (CHAT_ROUTE, chat_tool_calling, openai_routes.chat_completions) if api == "chat" else (RESPONSES_ROUTE, responses_tool_calling, openai_routes.responses)
    routes = [
        route if route.pattern.pattern != pattern else server_module.Route(route.method, route.pattern, wrap(original, seen), route.provider)
        for route in server_module.load_routes(names=["openai"])
    ]
    with server_module.running(routes=routes) as server:
        environment = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "OPENAI_", *drop))}
        environment.update(
            PATH=f"{VENV_BIN}{os.pathsep}{environment.get('PATH', '')}",
            XDG_STATE_HOME=str(tmp_path),
            GENOPS_TEAM="demo",
            GENOPS_PRICING_FILE=str(REPO / "examples" / "demo_prices.toml"),
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
            **{variables[0]: server.url + "/v1", variables[1]: "sk-test"},
            **env,
        )
        result = subprocess.run(["genops-run", sys.executable, str(REPO / "examples" / script)], env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "tool get_weather: 18°C and sunny in Paris" in result.stdout
    assert "answer: " in result.stdout and "Traceback" not in result.stderr
    return ExampleRun(result, console_spans(result.stdout), seen)


def assert_rolled_up(units: Iterable[dict[str, Any]], clients: list[dict[str, Any]], tokens: bool = True) -> None:
    """Each model call is the weather agent's, team demo, priced; each unit counts both calls, their
    cost and (``tokens``) their input tokens."""
    for client in clients:
        assert client["attributes"]["gen_ai.agent.name"] == "weather_agent"
        assert client["attributes"]["genops.team"] == "demo"
        assert client["attributes"]["genops.cost.status"] == "priced"
    for unit in units:
        rolled = unit["attributes"]
        assert rolled["genops.unit.calls"] == 2
        assert rolled["genops.cost.total"] == pytest.approx(sum(client["attributes"]["genops.cost.total"] for client in clients), rel=1e-12)
        if tokens:
            assert rolled["gen_ai.usage.input_tokens"] == sum(client["attributes"]["gen_ai.usage.input_tokens"] for client in clients)
