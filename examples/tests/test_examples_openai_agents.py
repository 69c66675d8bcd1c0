"""examples/openai_agents_app.py as a user runs it: unchanged, under `genops-run`, against the local
endpoint's Responses API (here answering a request that offers tools with a tool call first, as
OpenAI does)."""

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


def _tool_calling(responses: Any, seen: list[dict[str, Any]]) -> Any:
    """The local endpoint's responses route, answering a request with tools and no tool output
    yet with a call of its first tool; everything else as the endpoint answers it. Keeps the
    request bodies in ``seen``."""

    def handler(body: dict[str, Any], headers: dict[str, str], **params: Any) -> Any:
        seen.append(body)
        items = body.get("input") if isinstance(body.get("input"), list) else []
        if not body.get("tools") or any(isinstance(item, dict) and item.get("type") == "function_call_output" for item in items):
            return responses(body, headers, **params)
        status, response_headers, payload = responses({**body, "max_output_tokens": 7}, headers, **params)
        response = json.loads(payload)
        call = {"id": "fc_68af4c2e9b0001", "type": "function_call", "status": "completed", "call_id": "call_Qx7Lm2Vt0001", "name": body["tools"][0]["name"], "arguments": '{"city": "Paris"}'}
        response.update(output=[call], status="completed", incomplete_details=None)
        return status, response_headers, json.dumps(response).encode()

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
def test_openai_agents_example(server_module: Any, openai_routes: Any, tmp_path: Path) -> None:
    pytest.importorskip("agents")
    pytest.importorskip("genops_instrumentation_openai_agents")
    seen: list[dict[str, Any]] = []
    routes = [
        route if route.pattern.pattern != r"(?:/v1)?/responses" else server_module.Route(route.method, route.pattern, _tool_calling(openai_routes.responses, seen), route.provider)
        for route in server_module.load_routes(names=["openai"])
    ]
    with server_module.running(routes=routes) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "OPENAI_", "EXAMPLE_"))}
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            XDG_STATE_HOME=str(tmp_path),
            EXAMPLE_BASE_URL=server.url + "/v1",
            EXAMPLE_API_KEY="sk-test",
            GENOPS_TEAM="demo",
            GENOPS_PRICING_FILE=str(REPO / "examples" / "demo_prices.toml"),
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        result = subprocess.run(["genops-run", sys.executable, str(REPO / "examples" / "openai_agents_app.py")], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "tool get_weather: 18°C and sunny in Paris" in result.stdout
    assert "answer: " in result.stdout and "Traceback" not in result.stderr
    assert [len(body["input"]) for body in seen] == [1, 3]  # the question; then the tool call and its output
    spans = _spans(result.stdout)
    by_id = {span["context"]["span_id"]: span for span in spans}
    (workflow,) = [span for span in spans if span["name"] == "invoke_workflow Agent workflow"]
    (agent,) = [span for span in spans if span["name"] == "invoke_agent weather_agent"]
    (tool,) = [span for span in spans if span["name"] == "execute_tool get_weather"]
    clients = [span for span in spans if span["kind"] == "SpanKind.CLIENT"]
    assert len(clients) == 2
    assert len({span["context"]["trace_id"] for span in spans}) == 1  # the workflow is one trace
    assert agent["parent_id"] == workflow["context"]["span_id"]
    for span in [tool, *clients]:
        assert by_id[span["parent_id"]]["name"] == "invoke_agent weather_agent"
    for client in clients:
        assert client["attributes"]["gen_ai.agent.name"] == "weather_agent"
        assert client["attributes"]["genops.team"] == "demo"
        assert client["attributes"]["genops.cost.status"] == "priced"
    for unit in (agent, workflow):
        rolled = unit["attributes"]
        assert rolled["genops.unit.calls"] == 2
        assert rolled["genops.cost.total"] == pytest.approx(sum(client["attributes"]["genops.cost.total"] for client in clients), rel=1e-12)
        assert rolled["gen_ai.usage.input_tokens"] == sum(client["attributes"]["gen_ai.usage.input_tokens"] for client in clients)
