"""examples/llamaindex_agent.py as a user runs it: unchanged, under `genops-run`, against the local
endpoint (here answering a request that offers tools with a tool call first, as OpenAI does, in a
stream since LlamaIndex's agents stream by default)."""

from __future__ import annotations

from typing import Any

import pytest


def test_llamaindex_agent_example(run_example: Any, framework_apps: Any) -> None:
    pytest.importorskip("llama_index.core.agent.workflow")
    pytest.importorskip("llama_index.llms.openai")
    pytest.importorskip("genops_instrumentation_llamaindex")
    run = run_example("llamaindex_agent.py", variables=("OPENAI_API_BASE", "OPENAI_API_KEY"))  # LlamaIndex's variable for the endpoint
    assert any(body.get("stream") for body in run.seen), "the agent streams"
    by_id = {span["context"]["span_id"]: span for span in run.spans}
    (agent,) = run.named("invoke_agent weather_agent")
    (tool,) = run.named("execute_tool get_weather")
    clients = run.clients()
    assert len(clients) == 2
    assert len({span["context"]["trace_id"] for span in run.spans}) == 1  # the agent run is one trace
    for span in [tool, *clients]:
        assert by_id[span["parent_id"]]["name"] == "invoke_agent weather_agent"
    assert tool["attributes"]["gen_ai.tool.call.id"] == "call_Qx7Lm2Vt0001"
    framework_apps.assert_rolled_up([agent], clients)
