"""examples/pydantic_ai_agent.py as a user runs it: unchanged, under `genops-run`, against the local
endpoint (here answering a request that offers tools with a tool call first, as OpenAI does)."""

from __future__ import annotations

from typing import Any

import pytest


def test_pydantic_ai_agent_example(run_example: Any, framework_apps: Any) -> None:
    pytest.importorskip("pydantic_ai")
    pytest.importorskip("genops_instrumentation_pydantic_ai")
    run = run_example("pydantic_ai_agent.py", drop=("LOGFIRE_",))
    # pydantic-ai's own spans, on GenOps' providers from the first one on: one trace, no span of GenOps'.
    assert sorted(span["name"] for span in run.spans) == ["chat gpt-4o-mini", "chat gpt-4o-mini", "execute_tool get_weather", "invoke_agent weather_agent"]
    assert len({span["context"]["trace_id"] for span in run.spans}) == 1
    (agent,) = run.named("invoke_agent weather_agent")
    clients = run.clients()
    assert len(clients) == 2 and all(span["parent_id"] == agent["context"]["span_id"] for span in clients)
    framework_apps.assert_rolled_up([agent], clients, tokens=False)  # its agent span: no token totals of GenOps'
