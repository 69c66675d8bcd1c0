"""examples/openai_agents_app.py as a user runs it: unchanged, under `genops-run`, against the local
endpoint's Responses API (here answering a request that offers tools with a tool call first, as
OpenAI does)."""

from __future__ import annotations

from typing import Any

import pytest


def test_openai_agents_example(run_example: Any, framework_apps: Any) -> None:
    pytest.importorskip("agents")
    pytest.importorskip("genops_instrumentation_openai_agents")
    run = run_example("openai_agents_app.py", api="responses", drop=("EXAMPLE_",), variables=("EXAMPLE_BASE_URL", "EXAMPLE_API_KEY"))
    assert [len(body["input"]) for body in run.seen] == [1, 3]  # the question; then the tool call and its output
    by_id = {span["context"]["span_id"]: span for span in run.spans}
    (workflow,) = run.named("invoke_workflow Agent workflow")
    (agent,) = run.named("invoke_agent weather_agent")
    (tool,) = run.named("execute_tool get_weather")
    clients = run.clients()
    assert len(clients) == 2
    assert len({span["context"]["trace_id"] for span in run.spans}) == 1  # the workflow is one trace
    assert agent["parent_id"] == workflow["context"]["span_id"]
    for span in [tool, *clients]:
        assert by_id[span["parent_id"]]["name"] == "invoke_agent weather_agent"
    framework_apps.assert_rolled_up([agent, workflow], clients)
