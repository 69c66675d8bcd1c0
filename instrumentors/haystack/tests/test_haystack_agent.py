"""An Agent with a tool and two model calls (in a pipeline, async, standalone), and refused ones."""

from __future__ import annotations

import asyncio
import sys

import openai
import pytest

if sys.version_info < (3, 11):  # before the imports below, which need the SDK
    pytest.skip("haystack-ai 3.4+, the Haystack plugin's range, requires Python 3.11", allow_module_level=True)

from haystack import Pipeline
from haystack.components.agents import Agent
from haystack.components.builders import ChatPromptBuilder
from haystack.core.errors import PipelineRuntimeError
from haystack.dataclasses import ChatMessage
from haystack.tools import tool
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import config, policy_decision
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine.units import current_scope

TREE = [
    "pipeline",
    "  prompt_builder",
    "  invoke_agent weather_agent",
    "    chat gpt-4o-mini",
    "    execute_tool get_weather",
    "    chat gpt-4o-mini",
]
INPUT = {"prompt_builder": {"city": "Paris"}}


@tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


def _pipeline(endpoint, **generator):
    pipeline = Pipeline()
    pipeline.add_component("prompt_builder", ChatPromptBuilder(template=[ChatMessage.from_user("What is the weather in {{city}}?")], required_variables="*"))
    pipeline.add_component("weather_agent", Agent(chat_generator=endpoint.generator(**generator), tools=[get_weather]))
    pipeline.connect("prompt_builder.prompt", "weather_agent.messages")
    return pipeline


def _check_agent(spans, h, agent_name="weather_agent"):
    (agent,) = h.by_name(spans, f"invoke_agent {agent_name}")
    assert len({span.context.trace_id for span in spans}) == 1  # one trace for the run
    assert agent.kind == SpanKind.INTERNAL
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == agent_name
    assert agent.attributes["genops.unit.name"] == agent_name
    assert agent.attributes["haystack.agent.steps_taken"] == 2
    (tool_span,) = h.by_name(spans, "execute_tool get_weather")
    assert tool_span.parent.span_id == agent.context.span_id
    assert tool_span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_span.attributes["gen_ai.tool.name"] == "get_weather"
    assert tool_span.attributes["gen_ai.tool.type"] == "function"
    assert tool_span.attributes["gen_ai.tool.description"] == "The current weather of a city."
    first, second = sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time)  # one per model call
    h.check_tool_then_text(first, second)
    for client in (first, second):
        assert client.parent.span_id == agent.context.span_id
        assert client.attributes["gen_ai.agent.name"] == agent_name  # each call carries its agent
    h.check_rolled_up(agent, first, second)  # the agent's span: the sum of its calls
    return agent


def test_an_agent_in_a_pipeline_is_one_trace_with_its_cost_rolled_up(rec, endpoint, h):
    result = _pipeline(endpoint).run(INPUT)
    assert result["weather_agent"]["last_message"].text == "It is 18°C and sunny in Paris."
    assert len(endpoint.requests) == 2

    spans = rec.spans()
    assert h.tree(spans) == TREE
    agent = _check_agent(spans, h)
    (pipeline,) = h.by_name(spans, "pipeline")
    assert pipeline.parent is None and agent.parent.span_id == pipeline.context.span_id
    assert pipeline.attributes["genops.unit.calls"] == 2
    assert pipeline.attributes["genops.cost.total"] == pytest.approx(agent.attributes["genops.cost.total"], rel=1e-12)
    (builder,) = h.by_name(spans, "prompt_builder")
    assert builder.attributes["haystack.component.type"] == "ChatPromptBuilder" and builder.attributes["genops.unit.calls"] == 0
    assert current_scope() is None
    # Cost per agent: the agent's name is a dimension of the cost and token metrics.
    unit_costs = h.check_agent_metrics(rec.metrics())
    assert unit_costs["weather_agent"] == pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE), rel=1e-9)


def test_an_async_pipeline_has_the_same_trace(rec, endpoint, h):
    async def main():
        result = await _pipeline(endpoint).run_async(INPUT)
        return result, current_scope()

    result, scope_after = asyncio.run(main())
    assert result["weather_agent"]["last_message"].text == "It is 18°C and sunny in Paris."
    assert scope_after is None
    spans = rec.spans()
    assert h.tree(spans) == TREE
    _check_agent(spans, h)


def test_a_standalone_agent_is_an_agent_invocation(rec, endpoint, h):
    agent = Agent(chat_generator=endpoint.generator(), tools=[get_weather])
    result = agent.run(messages=[ChatMessage.from_user("What is the weather in Paris?")])
    assert result["last_message"].text == "It is 18°C and sunny in Paris."
    spans = rec.spans()
    assert h.tree(spans) == ["invoke_agent agent", "  chat gpt-4o-mini", "  execute_tool get_weather", "  chat gpt-4o-mini"]
    _check_agent(spans, h, "agent")  # a standalone Agent has no name of its own


def test_a_blocked_model_call_is_found_through_haystacks_exception(instrumented, endpoint, h):
    with capture(config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"})) as recorded:
        with pytest.raises(PipelineRuntimeError) as raised:
            _pipeline(endpoint).run(INPUT)
        spans = recorded.spans()
        decisions = recorded.metrics()["genops.policy.decisions"]
    # What the application gets is Haystack's PipelineRuntimeError raised from the SDK's native error ...
    assert isinstance(raised.value.__cause__, openai.PermissionDeniedError)
    # ... which `except PolicyViolation` misses; the public helper finds GenOps' decision in it.
    decision = policy_decision(raised.value)
    assert decision is not None and decision.reason_code == "POLICY_DENY_MODEL"
    assert endpoint.requests == []  # nothing was sent
    assert [(dims["genops.policy.result"], point.value) for dims, point in decisions] == [("BLOCKED", 1)]
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    (client,) = [span for span in spans if span.kind == SpanKind.CLIENT]
    assert client.parent.span_id == agent.context.span_id
    assert client.attributes["genops.policy.result"] == "BLOCKED"
    assert agent.status.status_code == StatusCode.ERROR
    assert agent.attributes["genops.unit.blocked_calls"] == 1 and agent.attributes["genops.cost.total"] == 0.0
    (pipeline,) = h.by_name(spans, "pipeline")
    assert pipeline.status.status_code == StatusCode.ERROR and pipeline.attributes["genops.unit.blocked_calls"] == 1


@pytest.mark.parametrize("max_retries", [None, 3], ids=["haystack-default-retries", "three-retries"])
def test_an_exhausted_budget_is_one_refused_decision_whatever_the_retries(instrumented, endpoint, h, max_retries):
    """Haystack's OpenAIChatGenerator gives the OpenAI client 5 retries by default (OPENAI_MAX_RETRIES);
    GenOps refuses before the client's retry loop, so the refusal is final: one decision, no request."""
    with capture(config.load({"GENOPS_BUDGETS": "global=0.0000001/day"})) as recorded:
        with pytest.raises(PipelineRuntimeError) as raised:
            _pipeline(endpoint, max_retries=max_retries).run(INPUT)
        decisions = recorded.metrics()["genops.policy.decisions"]
    decision = policy_decision(raised.value)
    assert decision is not None and decision.reason_code == "BUDGET_EXCEEDED"
    assert isinstance(raised.value.__cause__, openai.RateLimitError)
    assert endpoint.requests == []
    assert [(dims["genops.policy.reason_code"], dims["gen_ai.agent.name"], point.value) for dims, point in decisions] == [("BUDGET_EXCEEDED", "weather_agent", 1)]
