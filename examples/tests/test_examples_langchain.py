"""examples/langchain_agent.py as a user runs it: unchanged, under `genops-run`, against the local
endpoint (here answering a request that offers tools with a tool call first, as OpenAI does)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="langchain-core 1.8+ and langchain 1.5+, the LangChain plugin's range, require Python 3.11")


def test_langchain_agent_example(run_example: Any, framework_apps: Any) -> None:
    pytest.importorskip("langchain.agents")
    pytest.importorskip("langchain_openai")
    pytest.importorskip("genops_instrumentation_langchain")
    run = run_example("langchain_agent.py", drop=("LANGSMITH_", "LANGCHAIN_"))
    (agent,) = run.named("invoke_agent weather_agent")
    (tool,) = run.named("execute_tool get_weather")
    clients = run.clients()
    assert len(clients) == 2
    assert len({span["context"]["trace_id"] for span in run.spans}) == 1  # the agent run is one trace
    for span in [tool, *clients]:
        assert run.ancestors(span)[-1] == "invoke_agent weather_agent"
    assert tool["attributes"]["gen_ai.tool.call.id"] == "call_Qx7Lm2Vt0001"
    framework_apps.assert_rolled_up([agent], clients)
