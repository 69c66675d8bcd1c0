"""examples/llamaindex_agent.py as a user runs it: unchanged, under `genops-run`, against the local
endpoint (here answering a request that offers tools with a tool call first, as OpenAI does, in a
stream since LlamaIndex's agents stream by default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CALL = {"index": 0, "id": "call_Qx7Lm2Vt0001", "type": "function"}


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


def _tool_calling(chat_completions: Any) -> Any:
    """The local endpoint's chat route, answering a request with tools and no tool result yet
    with a call of its first tool (streamed when asked); everything else as the endpoint answers it."""

    def handler(body: dict[str, Any], headers: dict[str, str], **params: Any) -> Any:
        messages = body.get("messages") or []
        if not body.get("tools") or any(message.get("role") == "tool" for message in messages):
            return chat_completions(body, headers, **params)
        status, response_headers, payload = chat_completions({**body, "stream": False, "max_tokens": 7}, headers, **params)
        completion = json.loads(payload)
        function = {"name": body["tools"][0]["function"]["name"], "arguments": '{"city": "Paris"}'}
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


def _spans(stdout: str) -> list[dict[str, Any]]:
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


@pytest.mark.skipif(not (VENV_BIN / "genops-run").exists(), reason="genops-run is not installed next to this interpreter")
def test_llamaindex_agent_example(server_module: Any, openai_routes: Any, tmp_path: Path) -> None:
    pytest.importorskip("llama_index.core.agent.workflow")
    pytest.importorskip("llama_index.llms.openai")
    pytest.importorskip("genops_instrumentation_llamaindex")
    routes = [
        route if route.pattern.pattern != r"(?:/v1)?/chat/completions" else server_module.Route(route.method, route.pattern, _tool_calling(openai_routes.chat_completions), route.provider)
        for route in server_module.load_routes(names=["openai"])
    ]
    with server_module.running(routes=routes) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "OPENAI_"))}
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            XDG_STATE_HOME=str(tmp_path),
            OPENAI_API_BASE=server.url + "/v1",  # LlamaIndex's variable for the OpenAI endpoint
            OPENAI_API_KEY="sk-test",
            GENOPS_TEAM="demo",
            GENOPS_PRICING_FILE=str(REPO / "examples" / "demo_prices.toml"),
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        result = subprocess.run(["genops-run", sys.executable, str(REPO / "examples" / "llamaindex_agent.py")], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "tool get_weather: 18°C and sunny in Paris" in result.stdout
    assert "answer: " in result.stdout and "Traceback" not in result.stderr
    spans = _spans(result.stdout)
    by_id = {span["context"]["span_id"]: span for span in spans}
    (agent,) = [span for span in spans if span["name"] == "invoke_agent weather_agent"]
    (tool,) = [span for span in spans if span["name"] == "execute_tool get_weather"]
    clients = [span for span in spans if span["kind"] == "SpanKind.CLIENT"]
    assert len(clients) == 2
    assert len({span["context"]["trace_id"] for span in spans}) == 1  # the agent run is one trace
    for span in [tool, *clients]:
        assert by_id[span["parent_id"]]["name"] == "invoke_agent weather_agent"
    for client in clients:
        assert client["attributes"]["gen_ai.agent.name"] == "weather_agent"
        assert client["attributes"]["genops.team"] == "demo"
        assert client["attributes"]["genops.cost.status"] == "priced"
    assert tool["attributes"]["gen_ai.tool.call.id"] == "call_Qx7Lm2Vt0001"
    rolled = agent["attributes"]
    assert rolled["genops.unit.calls"] == 2
    assert rolled["genops.cost.total"] == pytest.approx(sum(client["attributes"]["genops.cost.total"] for client in clients), rel=1e-12)
    assert rolled["gen_ai.usage.input_tokens"] == sum(client["attributes"]["gen_ai.usage.input_tokens"] for client in clients)
