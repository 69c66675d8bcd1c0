"""An agent with a tool and two model calls (LangChain's ``create_agent``), and a blocked one."""

from __future__ import annotations

import asyncio
import sys

import openai
import pytest

if sys.version_info < (3, 11):  # before the imports below, which need the SDK
    pytest.skip("langchain-core 1.8+ and langchain 1.5+, the LangChain plugin's range, require Python 3.11", allow_module_level=True)

from langchain.agents import create_agent
from langchain_core.tools import tool
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import config, policy_decision
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine.units import current_scope

QUESTION = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
TREE = [
    "invoke_agent weather_agent",
    "  model",
    "    chat gpt-4o-mini",
    "  tools",
    "    execute_tool get_weather",
    "  model",
    "    chat gpt-4o-mini",
]


@tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


def _agent(endpoint):
    return create_agent(endpoint.model(), tools=[get_weather], name="weather_agent")


def _check_agent_trace(spans, h):
    assert h.tree(spans) == TREE
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    assert len({span.context.trace_id for span in spans}) == 1  # one trace for the run
    assert agent.kind == SpanKind.INTERNAL
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "weather_agent"
    assert agent.attributes["genops.unit.name"] == "weather_agent"
    (tool_span,) = h.by_name(spans, "execute_tool get_weather")
    assert tool_span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_span.attributes["gen_ai.tool.name"] == "get_weather"
    assert tool_span.attributes["gen_ai.tool.type"] == "function"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call_Qx7Lm2Vt0001"
    assert tool_span.attributes["gen_ai.tool.description"] == "The current weather of a city."
    first, second = sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time)
    h.check_tool_then_text(first, second)
    for client in (first, second):
        assert client.attributes["gen_ai.agent.name"] == "weather_agent"  # each call carries its agent
    h.check_rolled_up(agent, first, second)  # the agent's span: the sum of its calls
    return agent


def test_an_agent_run_is_one_trace_with_its_cost_rolled_up(rec, endpoint, h):
    result = _agent(endpoint).invoke(QUESTION)
    assert result["messages"][-1].content == "It is 18°C and sunny in Paris."
    assert len(endpoint.requests) == 2

    _check_agent_trace(rec.spans(), h)
    assert current_scope() is None
    # Cost per agent: the agent's name is a dimension of the cost and token metrics.
    unit_costs = h.check_agent_metrics(rec.metrics(), units_only=True)
    assert unit_costs["weather_agent"] == pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE), rel=1e-9)


def test_an_async_agent_run_has_the_same_trace(rec, endpoint, h):
    async def main():
        result = await _agent(endpoint).ainvoke(QUESTION)
        return result, current_scope()

    result, scope_after = asyncio.run(main())
    assert result["messages"][-1].content == "It is 18°C and sunny in Paris."
    assert scope_after is None
    _check_agent_trace(rec.spans(), h)


def test_a_blocked_model_call_is_found_through_langchains_exception(instrumented, endpoint, h):
    with capture(config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"})) as recorded:
        with pytest.raises(Exception) as raised:
            _agent(endpoint).invoke(QUESTION)
        spans = recorded.spans()
    # What the application gets is LangChain's re-raise of the SDK's native error (a 403) ...
    assert isinstance(raised.value, openai.PermissionDeniedError)
    # ... which `except PolicyViolation` may miss; the public helper finds GenOps' decision in it.
    decision = policy_decision(raised.value)
    assert decision is not None and decision.reason_code == "POLICY_DENY_MODEL"
    assert decision.policy_name and "gpt-4o-mini" in (decision.message or "")
    assert endpoint.requests == []  # nothing was sent
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    (client,) = [span for span in spans if span.kind == SpanKind.CLIENT]
    assert client.parent.span_id in {span.context.span_id for span in h.children(spans, agent)}
    assert client.attributes["genops.policy.result"] == "BLOCKED"
    assert agent.status.status_code == StatusCode.ERROR
    assert agent.attributes["genops.unit.blocked_calls"] == 1 and agent.attributes["genops.cost.total"] == 0.0
