"""examples/haystack_pipeline.py as a user runs it: unchanged, under `genops-run`, against the local
endpoint (here answering a request that offers tools with a tool call first, as OpenAI does)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="haystack-ai 3.4+, the Haystack plugin's range, requires Python 3.11")


def test_haystack_pipeline_example(run_example: Any, framework_apps: Any) -> None:
    pytest.importorskip("haystack.components.agents")
    pytest.importorskip("genops_instrumentation_haystack")
    run = run_example("haystack_pipeline.py", drop=("HAYSTACK_",), HAYSTACK_TELEMETRY_ENABLED="False")
    (pipeline,) = run.named("pipeline")
    (agent,) = run.named("invoke_agent weather_agent")
    (tool,) = run.named("execute_tool get_weather")
    clients = run.clients()
    assert len(clients) == 2
    assert len({span["context"]["trace_id"] for span in run.spans}) == 1  # the pipeline run is one trace
    assert pipeline["parent_id"] is None
    for span in [tool, *clients]:
        assert run.ancestors(span)[-2:] == ["invoke_agent weather_agent", "pipeline"]
    assert tool["attributes"]["gen_ai.tool.name"] == "get_weather"
    framework_apps.assert_rolled_up([agent, pipeline], clients)
