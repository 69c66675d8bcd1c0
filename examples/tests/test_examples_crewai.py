"""examples/crewai_crew.py as a user runs it: unchanged, under `genops-run`, against the local
endpoint (here answering a request that offers tools with a call of its first tool first, as
OpenAI does; CrewAI does not stream by default). CrewAI's anonymous telemetry is turned off for the
run (it would otherwise send to telemetry.crewai.com)."""

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


def _calling_the_tool(chat_completions: Any) -> Any:
    """The endpoint's chat route; a request with tools and no tool result yet gets a tool call."""

    def handler(body: dict[str, Any], headers: dict[str, str], **params: Any) -> Any:
        offered = body.get("tools") and not any(message.get("role") == "tool" for message in body.get("messages") or [])
        status, response_headers, payload = chat_completions({**body, "max_tokens": 7} if offered else body, headers, **params)
        if not offered or status != 200:
            return status, response_headers, payload
        completion = json.loads(payload)
        call = {"id": "call_Qx7Lm2Vt0001", "type": "function", "function": {"name": body["tools"][0]["function"]["name"], "arguments": '{"city": "Paris"}'}}
        completion["choices"][0].update(message={"role": "assistant", "content": None, "tool_calls": [call], "refusal": None, "annotations": []}, finish_reason="tool_calls")
        return status, response_headers, json.dumps(completion).encode()

    return handler


def _console_spans(stdout: str) -> list[dict[str, Any]]:
    """The console exporter's JSON spans (each an indented object starting on its own line)."""
    decoder, found, start = json.JSONDecoder(), [], stdout.find("{\n")
    while start != -1:
        try:
            value, end = decoder.raw_decode(stdout, start)
        except json.JSONDecodeError:
            end = start + 1
        else:
            if isinstance(value, dict) and "context" in value and "kind" in value:
                found.append(value)
        start = stdout.find("{\n", end)
    return found


@pytest.mark.skipif(not (VENV_BIN / "genops-run").exists(), reason="genops-run is not installed next to this interpreter")
def test_crewai_crew_example(server_module: Any, openai_routes: Any, tmp_path: Path) -> None:
    pytest.importorskip("crewai")
    pytest.importorskip("genops_instrumentation_crewai")
    routes = [
        route if route.pattern.pattern != r"(?:/v1)?/chat/completions" else server_module.Route(route.method, route.pattern, _calling_the_tool(openai_routes.chat_completions), route.provider)
        for route in server_module.load_routes(names=["openai"])
    ]
    with server_module.running(routes=routes) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("GENOPS_", "OTEL_", "OPENAI_", "CREWAI_"))}
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            HOME=str(tmp_path),  # CrewAI keeps its own settings and storage under the home folder
            XDG_STATE_HOME=str(tmp_path),
            OPENAI_BASE_URL=server.url + "/v1",
            OPENAI_API_KEY="sk-test",
            CREWAI_DISABLE_TELEMETRY="true",
            CREWAI_TRACING_ENABLED="false",
            GENOPS_TEAM="demo",
            GENOPS_PRICING_FILE=str(REPO / "examples" / "demo_prices.toml"),
            OTEL_TRACES_EXPORTER="console",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
        result = subprocess.run(["genops-run", sys.executable, str(REPO / "examples" / "crewai_crew.py")], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "task weather-report: " in result.stdout and "answer: " in result.stdout
    assert "Traceback" not in result.stderr
    spans = _console_spans(result.stdout)
    by_id = {span["context"]["span_id"]: span for span in spans}
    (agent,) = [span for span in spans if span["name"] == "invoke_agent Weather reporter"]
    (tool,) = [span for span in spans if span["name"] == "execute_tool get_weather"]
    (crew,) = [span for span in spans if span["name"] == "crew"]
    clients = [span for span in spans if span["kind"] == "SpanKind.CLIENT"]
    assert len(clients) == 2
    assert len({span["context"]["trace_id"] for span in spans}) == 1  # the crew run is one trace
    assert by_id[by_id[agent["parent_id"]]["parent_id"]] is crew  # crew > task > agent
    for span in [tool, *clients]:
        assert by_id[span["parent_id"]] is agent
    for client in clients:
        assert client["attributes"]["gen_ai.agent.name"] == "Weather reporter"
        assert client["attributes"]["genops.team"] == "demo"
        assert client["attributes"]["genops.cost.status"] == "priced"
    for run in (crew, agent):
        assert run["attributes"]["genops.unit.calls"] == 2
        assert run["attributes"]["genops.cost.total"] == pytest.approx(sum(client["attributes"]["genops.cost.total"] for client in clients), rel=1e-12)
        assert run["attributes"]["gen_ai.usage.input_tokens"] == sum(client["attributes"]["gen_ai.usage.input_tokens"] for client in clients)
