"""An agent with a tool and two model calls, on the Responses and Chat Completions APIs, sync,
async and streamed: one trace per workflow, one CLIENT span per model call, cost per agent."""

from __future__ import annotations

import asyncio

import pytest
from agents import Agent, Runner, function_tool
from opentelemetry.trace import SpanKind

from genops_autoinstrument.engine.units import current_scope

QUESTION = "What is the weather in Paris?"
ANSWER = "It is 18°C and sunny in Paris."
TREE = [
    "invoke_workflow Agent workflow",
    "  invoke_agent weather_agent",
    "    chat gpt-4o-mini",
    "    execute_tool get_weather",
    "    chat gpt-4o-mini",
]


@function_tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


def _agent(endpoint, api="responses"):
    return Agent(name="weather_agent", instructions="Be brief.", tools=[get_weather], model=endpoint.model(api))


def check_agent_trace(spans, h):
    """The tree, the agent's and tool's spans, exact tokens and cost, and the rolled-up totals."""
    assert h.tree(spans) == TREE
    assert len({span.context.trace_id for span in spans}) == 1  # one trace for the workflow
    (workflow,) = h.by_name(spans, "invoke_workflow Agent workflow")
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    assert workflow.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert workflow.attributes["gen_ai.workflow.name"] == "Agent workflow"
    assert agent.kind == SpanKind.INTERNAL
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "weather_agent"
    assert agent.attributes["genops.unit.name"] == "weather_agent"
    (tool,) = h.by_name(spans, "execute_tool get_weather")
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "get_weather"
    assert tool.attributes["gen_ai.tool.type"] == "function"
    assert tool.attributes["gen_ai.agent.name"] == "weather_agent"
    first, second = sorted((span for span in spans if span.kind == SpanKind.CLIENT), key=lambda span: span.start_time)
    assert (first.attributes["gen_ai.usage.input_tokens"], first.attributes["gen_ai.usage.output_tokens"]) == h.TOOL_USAGE
    assert (second.attributes["gen_ai.usage.input_tokens"], second.attributes["gen_ai.usage.output_tokens"]) == h.TEXT_USAGE
    assert first.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TOOL_USAGE), rel=1e-9)
    assert second.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TEXT_USAGE), rel=1e-9)
    for client in (first, second):
        assert client.parent.span_id == agent.context.span_id
        assert client.attributes["gen_ai.agent.name"] == "weather_agent"  # each call carries its agent
    # The agent's and the workflow's spans: the rolled-up cost and tokens, the sum of the calls.
    for unit in (agent, workflow):
        assert unit.attributes["genops.unit.calls"] == 2
        assert unit.attributes["genops.cost.total"] == pytest.approx(first.attributes["genops.cost.total"] + second.attributes["genops.cost.total"], rel=1e-12)
        assert unit.attributes["gen_ai.usage.input_tokens"] == h.TOOL_USAGE[0] + h.TEXT_USAGE[0]
        assert unit.attributes["gen_ai.usage.output_tokens"] == h.TOOL_USAGE[1] + h.TEXT_USAGE[1]
    assert tool.attributes["genops.unit.calls"] == 0 and tool.attributes["genops.cost.total"] == 0.0


def test_an_agent_run_is_one_trace_with_its_cost_rolled_up(rec, endpoint, h):
    result = Runner.run_sync(_agent(endpoint), QUESTION)
    assert result.final_output == ANSWER
    assert len(endpoint.requests) == 2 and endpoint.requests[0]["tools"][0]["name"] == "get_weather"

    check_agent_trace(rec.spans(), h)
    assert current_scope() is None
    # Cost per agent: the agent's name is a dimension of the cost and token metrics.
    units = h.check_agent_metrics(rec.metrics())
    assert units["weather_agent"] == pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE), rel=1e-9)
    assert units["Agent workflow"] == pytest.approx(units["weather_agent"], rel=1e-12)


def test_the_chat_completions_model_in_an_async_run_gives_the_same_trace(rec, endpoint, h):
    async def main():
        result = await Runner.run(_agent(endpoint, "chat"), QUESTION)
        return result.final_output, current_scope()

    output, scope_after = asyncio.run(main())
    assert output == ANSWER and scope_after is None
    assert [request["messages"][-1]["role"] for request in endpoint.requests] == ["user", "tool"]
    check_agent_trace(rec.spans(), h)


def test_a_streamed_run_gives_the_same_trace(rec, endpoint, h):
    async def main():
        result = Runner.run_streamed(_agent(endpoint, "chat"), QUESTION)
        kinds = {event.type async for event in result.stream_events()}
        return result.final_output, kinds, current_scope()

    output, kinds, scope_after = asyncio.run(main())
    assert output == ANSWER and "run_item_stream_event" in kinds and scope_after is None
    assert all(request.get("stream") is True for request in endpoint.requests)
    check_agent_trace(rec.spans(), h)


def test_two_runs_at_once_are_two_traces_that_do_not_mix(rec, endpoint, h):
    async def main():
        return await asyncio.gather(Runner.run(_agent(endpoint), QUESTION), Runner.run(_agent(endpoint, "chat"), QUESTION))

    results = asyncio.run(main())
    assert [result.final_output for result in results] == [ANSWER, ANSWER]
    spans = rec.spans()
    agents = h.by_name(spans, "invoke_agent weather_agent")
    assert len(agents) == 2 and len({agent.context.trace_id for agent in agents}) == 2
    for agent in agents:
        clients = [span for span in spans if span.kind == SpanKind.CLIENT and span.parent.span_id == agent.context.span_id]
        assert len(clients) == 2
        assert agent.attributes["genops.unit.calls"] == 2
        assert agent.attributes["genops.cost.total"] == pytest.approx(sum(client.attributes["genops.cost.total"] for client in clients), rel=1e-12)
    assert len(h.by_name(spans, "execute_tool get_weather")) == 2
