"""examples/pydantic_ai_agent.py as a user runs it: unchanged, under `genops-run`, against the local
endpoint (here answering a request that offers tools with a tool call first, as OpenAI does)."""

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


def _tool_calling(chat_completions: Any) -> Any:
    """The local endpoint's chat route, answering a request with tools and no tool result yet
    with a call of its first tool; everything else as the endpoint answers it."""

    def handler(body: dict[str, Any], headers: dict[str, str], **params: Any) -> Any:
        messages = body.get("messages") or []
        if not body.get("tools") or any(message.get("role") == "tool" for message in messages):
            return chat_completions(body, headers, **params)
        status, response_headers, payload = chat_completions({**body, "max_tokens": 7}, headers, **params)
        completion = json.loads(payload)
        call = {"id": "call_Qx7Lm2Vt0001", "type": "function", "function": {"name": body["tools"][0]["function"]["name"], "arguments": '{"city": "Paris"}'}}
        completion["choices"][0].update(message={"role": "assistant", "content": None, "tool_calls": [call], "refusal": None, "annotations": []}, finish_reason="tool_calls")
        return status, response_headers, json.dumps(completion).encode()

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
def test_pydantic_ai_agent_example(server_module: Any, openai_routes: Any, tmp_path: Path) -> None:
    pytest.importorskip("pydantic_ai")
    pytest.importorskip("genops_instrumentation_pydantic_ai")
    routes = [
        route if route.pattern.pattern != r"(?:/v1)?/chat/completions" else server_module.Route(route.method, route.pattern, _tool_calling(openai_routes.chat_completions), route.provider)
        for route in server_module.load_routes(names=["openai"])
    ]
    with server_module.running(routes=routes) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "OPENAI_", "LOGFIRE_"))}
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            XDG_STATE_HOME=str(tmp_path),
            OPENAI_BASE_URL=server.url + "/v1",
            OPENAI_API_KEY="sk-test",
            GENOPS_TEAM="demo",
            GENOPS_PRICING_FILE=str(REPO / "examples" / "demo_prices.toml"),
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        result = subprocess.run(["genops-run", sys.executable, str(REPO / "examples" / "pydantic_ai_agent.py")], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "tool get_weather: 18°C and sunny in Paris" in result.stdout
    assert "answer: " in result.stdout and "Traceback" not in result.stderr
    spans = _spans(result.stdout)
    # pydantic-ai's own spans, on GenOps' providers from the first one on: one trace, no span of GenOps'.
    assert sorted(span["name"] for span in spans) == ["chat gpt-4o-mini", "chat gpt-4o-mini", "execute_tool get_weather", "invoke_agent weather_agent"]
    assert len({span["context"]["trace_id"] for span in spans}) == 1
    (agent,) = [span for span in spans if span["name"] == "invoke_agent weather_agent"]
    clients = [span for span in spans if span["kind"] == "SpanKind.CLIENT"]
    assert len(clients) == 2 and all(span["parent_id"] == agent["context"]["span_id"] for span in clients)
    for client in clients:
        assert client["attributes"]["gen_ai.agent.name"] == "weather_agent"
        assert client["attributes"]["genops.team"] == "demo"
        assert client["attributes"]["genops.cost.status"] == "priced"
    rolled = agent["attributes"]
    assert rolled["genops.unit.calls"] == 2
    assert rolled["genops.cost.total"] == pytest.approx(sum(client["attributes"]["genops.cost.total"] for client in clients), rel=1e-12)
