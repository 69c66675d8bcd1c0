"""An agent with a tool and two model calls (LlamaIndex's ``FunctionAgent``, streaming as by
default and not), a multi-agent ``AgentWorkflow``, and blocked or refused runs."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import config, policy_decision, track
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine.units import current_scope
from genops_autoinstrument.governance.enforcing import EnforcingGovernor

QUESTION = "What is the weather in Paris?"
TREE = [
    "invoke_agent weather_agent",
    "  chat gpt-4o-mini",
    "  execute_tool get_weather",
    "  chat gpt-4o-mini",
]


def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


def _agent(endpoint, streaming=True, **kwargs):
    return FunctionAgent(name="weather_agent", description="Answers weather questions.", tools=[get_weather], llm=endpoint.llm(**kwargs), streaming=streaming)


def _run(workflow, question=QUESTION):
    async def main():
        result = await workflow.run(user_msg=question)
        return result, current_scope()

    result, scope_after = asyncio.run(main())
    assert scope_after is None  # the run's scope ended with it
    return result


def _clients(spans):
    return sorted((s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time)


def _check_calls(spans, h, agent_name="weather_agent"):
    first, second = _clients(spans)
    h.check_tool_then_text(first, second)
    for client in (first, second):
        assert client.attributes["gen_ai.agent.name"] == agent_name  # each call carries its agent
    return first, second


def _check_rolled_up(run, first, second, h):
    """The run's span: the rolled-up cost and tokens of everything under it, the sum of its calls."""
    h.check_rolled_up(run, first, second)


def _check_agent_trace(spans, h):
    assert h.tree(spans) == TREE
    assert len({span.context.trace_id for span in spans}) == 1  # one trace for the run
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    assert agent.kind == SpanKind.INTERNAL
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "weather_agent"
    assert agent.attributes["gen_ai.agent.description"] == "Answers weather questions."
    assert agent.attributes["genops.unit.name"] == "weather_agent"
    (tool_span,) = h.by_name(spans, "execute_tool get_weather")
    assert tool_span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_span.attributes["gen_ai.tool.name"] == "get_weather"
    assert tool_span.attributes["gen_ai.tool.type"] == "function"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call_Qx7Lm2Vt0001"
    assert "The current weather of a city." in tool_span.attributes["gen_ai.tool.description"]
    assert tool_span.attributes["gen_ai.agent.name"] == "weather_agent"
    first, second = _check_calls(spans, h)
    _check_rolled_up(agent, first, second, h)
    return agent


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "not-streaming"])
def test_an_agent_run_is_one_trace_with_its_cost_rolled_up(rec, endpoint, h, streaming):
    result = _run(_agent(endpoint, streaming))
    assert str(result) == "It is 18°C and sunny in Paris."
    assert len(endpoint.requests) == 2 and all(bool(body.get("stream")) == streaming for body in endpoint.requests)

    _check_agent_trace(rec.spans(), h)
    # Cost per agent: the agent's name is a dimension of the cost and token metrics.
    unit_costs = h.check_agent_metrics(rec.metrics(), units_only=True)
    assert unit_costs["weather_agent"] == pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE), rel=1e-9)


def test_an_agent_run_inside_track_rolls_up_into_the_applications_unit(rec, endpoint, h):
    async def main():
        with track("handle-request") as unit:
            await _agent(endpoint).run(user_msg=QUESTION)
        return unit

    unit = asyncio.run(main())
    spans = rec.spans()
    (outer,) = h.by_name(spans, "handle-request")
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    assert agent.parent.span_id == outer.context.span_id
    assert outer.attributes["genops.unit.calls"] == 2
    assert unit.cost == pytest.approx(agent.attributes["genops.cost.total"], rel=1e-12)


def test_a_react_agent_has_the_same_trace_shape(rec, endpoint, h):
    agent = ReActAgent(name="react_agent", tools=[get_weather], llm=endpoint.llm(), streaming=False)
    result = _run(agent)
    assert str(result) == "Echo: What is the weather in Paris?"
    spans = rec.spans()
    (run,) = h.by_name(spans, "invoke_agent react_agent")
    (client,) = _clients(spans)  # a ReAct agent offers no tools to the API: one text answer
    assert client.parent.span_id == run.context.span_id
    assert client.attributes["gen_ai.agent.name"] == "react_agent"
    assert run.attributes["genops.unit.calls"] == 1


def test_a_multi_agent_workflow_attributes_each_call_to_the_agent_whose_turn_it_is(rec, endpoint, h):
    workflow = AgentWorkflow(agents=[_agent(endpoint, streaming=False)], root_agent="weather_agent")
    result = _run(workflow)
    assert str(result) == "It is 18°C and sunny in Paris."

    spans = rec.spans()
    assert h.tree(spans) == ["AgentWorkflow", "  chat gpt-4o-mini", "  execute_tool get_weather", "  chat gpt-4o-mini"]
    (run,) = h.by_name(spans, "AgentWorkflow")
    assert "gen_ai.operation.name" not in run.attributes
    first, second = _check_calls(spans, h)
    _check_rolled_up(run, first, second, h)
    (tool_span,) = h.by_name(spans, "execute_tool get_weather")
    assert tool_span.attributes["gen_ai.agent.name"] == "weather_agent"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "call_Qx7Lm2Vt0001"
    costs = {dims["gen_ai.agent.name"]: point.value for dims, point in rec.metrics()["genops.cost"]}
    assert costs == {"weather_agent": pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE), rel=1e-9)}


def test_a_blocked_model_call_is_found_through_the_agents_exception(instrumented, endpoint, h):
    with capture(config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"})) as recorded:
        with pytest.raises(Exception) as raised:
            _run(_agent(endpoint))
        spans = recorded.spans()
    # What the application gets is the SDK's native error (a 403), as the agent's workflow re-raises it.
    assert isinstance(raised.value, openai.PermissionDeniedError)
    decision = policy_decision(raised.value)
    assert decision is not None and decision.reason_code == "POLICY_DENY_MODEL"
    assert decision.policy_name and "gpt-4o-mini" in (decision.message or "")
    assert endpoint.requests == []  # nothing was sent
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    (client,) = _clients(spans)
    assert client.parent.span_id == agent.context.span_id
    assert client.attributes["genops.policy.result"] == "BLOCKED"
    assert agent.status.status_code == StatusCode.ERROR
    assert agent.attributes["genops.unit.blocked_calls"] == 1 and agent.attributes["genops.cost.total"] == 0.0


def _refused_decisions(recorded):
    return sum(point.value for dims, point in recorded.metrics().get("genops.policy.decisions", []) if dims.get("genops.policy.result") == "BLOCKED")


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "not-streaming"])
def test_an_exhausted_budget_is_one_refused_decision_with_the_default_retries(instrumented, endpoint, h, tmp_path, streaming):
    """LlamaIndex's OpenAI LLM retries a RateLimitError 3 times with back-off (max_retries=3, its
    default); the budget's refusal is one, and the plugin makes it final: one refused decision for
    the one model call the agent meant to make, nothing sent."""
    settings = config.load({"GENOPS_BUDGETS": "team=0.0000001/day", "GENOPS_TEAM": "search", "GENOPS_LEDGER_URL": "memory://"})
    governor = EnforcingGovernor(settings)
    llm_retries = _agent(endpoint, streaming).llm.max_retries
    try:
        with capture(settings, governor=governor) as recorded:
            with pytest.raises(openai.RateLimitError) as raised:
                _run(_agent(endpoint, streaming))
            refused, spans = _refused_decisions(recorded), recorded.spans()
    finally:
        governor.close()
    assert llm_retries == 3
    decision = policy_decision(raised.value)
    assert decision is not None and decision.reason_code == "BUDGET_EXCEEDED"
    assert refused == 1
    assert len(_clients(spans)) == 1 and endpoint.requests == []
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    assert agent.attributes["genops.unit.blocked_calls"] == 1 and agent.status.status_code == StatusCode.ERROR


def test_other_errors_are_still_retried_as_llamaindex_does(instrumented, endpoint, h):
    """The plugin changes LlamaIndex's retries for GenOps' refusals only: a real 429 is retried."""
    answers = [429, 200]

    def flaky(request):
        if answers.pop(0) == 429:
            return httpx.Response(429, json={"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}, headers={"retry-after": "0"})
        return endpoint.handler(request)

    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai import OpenAI

    # The SDK's own retries off (max_retries=0 on its client): LlamaIndex's retry is the one under test.
    client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(flaky)))
    llm = OpenAI(model=h.MODEL, api_key="sk-test", max_retries=2, openai_client=client)
    with capture(config.load({})) as recorded:
        answer = llm.chat([ChatMessage(role="user", content="hello")])
        spans = recorded.spans()
    assert answer.message.content == "Echo: hello"
    assert answers == [] and len(_clients(spans)) == 2  # the 429, then its retry
