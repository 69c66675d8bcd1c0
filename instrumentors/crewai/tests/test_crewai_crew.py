"""A crew with one agent, one tool and two model calls: one trace, rolled-up cost, cost per agent."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from crewai import Agent, Crew, Task
from crewai.tools import tool
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import config, track
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine.units import current_scope

TREE = [
    "crew",
    "  weather-report",
    "    invoke_agent Weather reporter",
    "      chat gpt-4o-mini",
    "      execute_tool get_weather",
    "      chat gpt-4o-mini",
]


@tool("get_weather")
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


def crew(endpoint, **agent_settings):
    agent = Agent(role="Weather reporter", goal="Report the weather", backstory="A concise reporter.", tools=[get_weather], llm=endpoint.llm(), **agent_settings)
    task = Task(name="weather-report", description="What is the weather in Paris?", expected_output="One sentence.", agent=agent)
    return Crew(agents=[agent], tasks=[task])


def clients(spans):
    return sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time)


def test_a_crew_run_is_one_trace_with_its_cost_rolled_up(rec, endpoint, h):
    result = crew(endpoint).kickoff()
    assert str(result) == h.REPLY
    assert current_scope() is None  # the run's scope ended with it
    assert len(endpoint.requests) == 2

    spans = rec.spans()
    assert h.tree(spans) == TREE
    assert len({span.context.trace_id for span in spans}) == 1
    (run,) = h.by_name(spans, "crew")
    (task,) = h.by_name(spans, "weather-report")
    (agent,) = h.by_name(spans, "invoke_agent Weather reporter")
    (tool_span,) = h.by_name(spans, "execute_tool get_weather")
    assert run.attributes["crewai.crew.name"] == "crew" and run.attributes["genops.unit.name"] == "crew"
    assert task.attributes["crewai.task.name"] == "weather-report" and task.attributes["crewai.task.id"]
    assert agent.kind == SpanKind.INTERNAL
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "Weather reporter"
    assert agent.attributes["gen_ai.agent.id"] and agent.attributes["gen_ai.agent.description"] == "Report the weather"
    assert tool_span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_span.attributes["gen_ai.tool.name"] == "get_weather" and tool_span.attributes["gen_ai.tool.type"] == "function"
    assert tool_span.attributes["gen_ai.agent.name"] == "Weather reporter"

    first, second = clients(spans)  # one CLIENT span per model call, children of the agent
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert (first.attributes["gen_ai.usage.input_tokens"], first.attributes["gen_ai.usage.output_tokens"]) == h.TOOL_USAGE
    assert (second.attributes["gen_ai.usage.input_tokens"], second.attributes["gen_ai.usage.output_tokens"]) == h.TEXT_USAGE
    assert first.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TOOL_USAGE), rel=1e-9)
    assert second.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TEXT_USAGE), rel=1e-9)
    for client in (first, second):
        assert client.parent.span_id == agent.context.span_id
        assert client.attributes["gen_ai.agent.name"] == "Weather reporter"

    total = first.attributes["genops.cost.total"] + second.attributes["genops.cost.total"]
    for unit in (run, task, agent):  # each run's rolled-up cost is the sum of its calls
        assert unit.attributes["genops.unit.calls"] == 2
        assert unit.attributes["genops.cost.total"] == pytest.approx(total, rel=1e-12)
        assert unit.attributes["gen_ai.usage.input_tokens"] == h.TOOL_USAGE[0] + h.TEXT_USAGE[0]
        assert unit.attributes["gen_ai.usage.output_tokens"] == h.TOOL_USAGE[1] + h.TEXT_USAGE[1]
        assert unit.status.status_code != StatusCode.ERROR

    metrics = rec.metrics()  # cost per agent: the role is a dimension of the cost and token metrics
    costs = {dims["gen_ai.agent.name"]: point.value for dims, point in metrics["genops.cost"]}
    assert costs == {"Weather reporter": pytest.approx(total, rel=1e-9)}
    tokens = {(dims["gen_ai.agent.name"], dims["gen_ai.token.type"]): point.sum for dims, point in metrics["gen_ai.client.token.usage"]}
    assert tokens == {("Weather reporter", "input"): 105, ("Weather reporter", "output"): 27}


def test_a_crew_run_inside_track_rolls_up_into_the_applications_unit(rec, endpoint, h):
    with track("handle-request") as unit:
        crew(endpoint).kickoff()
    spans = rec.spans()
    (outer,) = h.by_name(spans, "handle-request")
    (run,) = h.by_name(spans, "crew")
    assert run.parent.span_id == outer.context.span_id
    assert outer.attributes["genops.unit.calls"] == 2
    assert unit.cost == pytest.approx(run.attributes["genops.cost.total"], rel=1e-12)


def test_an_async_kickoff_has_the_same_trace(rec, endpoint, h):
    result = asyncio.run(crew(endpoint).kickoff_async())
    assert str(result) == h.REPLY
    assert h.tree(rec.spans()) == TREE


def test_two_agents_in_sequence_each_get_their_calls(rec, endpoint, h):
    reporter = Agent(role="Weather reporter", goal="Report the weather", backstory="A reporter.", tools=[get_weather], llm=endpoint.llm())
    editor = Agent(role="Editor", goal="Polish the report", backstory="An editor.", llm=endpoint.llm())
    tasks = [
        Task(name="report", description="What is the weather in Paris?", expected_output="One sentence.", agent=reporter),
        Task(name="edit", description="Polish the report.", expected_output="One sentence.", agent=editor),
    ]
    Crew(agents=[reporter, editor], tasks=tasks).kickoff()
    spans = rec.spans()
    assert h.tree(spans) == [
        "crew",
        "  report",
        "    invoke_agent Weather reporter",
        "      chat gpt-4o-mini",
        "      execute_tool get_weather",
        "      chat gpt-4o-mini",
        "  edit",
        "    invoke_agent Editor",
        "      chat gpt-4o-mini",
    ]
    costs = {dims["gen_ai.agent.name"]: point.value for dims, point in rec.metrics()["genops.cost"]}
    assert costs == {"Weather reporter": pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE), rel=1e-9), "Editor": pytest.approx(h.cost(h.TEXT_USAGE), rel=1e-9)}
    (run,) = h.by_name(spans, "crew")
    assert run.attributes["genops.unit.calls"] == 3


def test_uninstrumented_crews_record_no_runs(instrumented, endpoint, h):
    from genops_instrumentation_crewai import CrewAIInstrumentor

    CrewAIInstrumentor().uninstrument()
    try:
        with capture(config.load({})) as recorded:
            crew(endpoint).kickoff()
            spans = recorded.spans()
    finally:
        CrewAIInstrumentor().instrument()
    assert [span.name for span in spans] == ["chat gpt-4o-mini", "chat gpt-4o-mini"]  # the provider plugin still records


def test_importing_the_plugin_imports_no_crewai():
    code = "import sys, genops_instrumentation_crewai; print(sorted(m for m in sys.modules if m.startswith(('crewai', 'chromadb'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
