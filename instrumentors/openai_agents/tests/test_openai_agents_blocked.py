"""A refused model call through the Agents SDK: found by ``policy_decision`` in what the run raises,
nothing sent, and how many refused decisions a blocked run makes with the SDK's retry settings."""

from __future__ import annotations

import openai
import pytest
from agents import Agent, ModelSettings, Runner
from agents.exceptions import UserError
from agents.retry import ModelRetrySettings, retry_policies
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import PolicyViolation, config, policy_decision
from genops_autoinstrument.api.testing import capture

BLOCKED = {"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"}
NO_BUDGET = {"GENOPS_BUDGETS": "team=0.000001/day", "GENOPS_TEAM": "search", "GENOPS_LEDGER_URL": "memory://"}
# Runner-managed retries, opt-in: what the SDK's docs suggest for transient provider errors.
RETRIES = ModelSettings(retry=ModelRetrySettings(max_retries=3, backoff={"initial_delay": 0, "max_delay": 0}, policy=retry_policies.any(retry_policies.provider_suggested(), retry_policies.network_error())))


def _refused(recorded) -> int:
    """How many refused decisions the engine made (the policy-decision metric's BLOCKED count)."""
    return sum(point.value for dims, point in recorded.metrics().get("genops.policy.decisions", []) if dims["genops.policy.result"] == "BLOCKED")


def _run(endpoint, environment, settings=None, api="responses"):
    """Run an agent under ``environment``: (what it raised, spans, refused decisions)."""
    # The OpenAI client's own default of 2 retries: GenOps refuses before its retry loop.
    agent = Agent(name="weather_agent", instructions="Be brief.", model=endpoint.model(api, max_retries=2), model_settings=settings or ModelSettings())
    with capture(config.load(environment)) as recorded:
        with pytest.raises(Exception) as raised:
            Runner.run_sync(agent, "What is the weather in Paris?")
        return raised.value, recorded.spans(), _refused(recorded)


def test_a_blocked_model_call_is_found_in_what_the_run_raises(instrumented, endpoint, h):
    error, spans, refused = _run(endpoint, BLOCKED)
    # The Agents SDK re-raises the SDK's native error (a 403), which is also GenOps' PolicyViolation.
    assert isinstance(error, openai.PermissionDeniedError) and isinstance(error, PolicyViolation)
    decision = policy_decision(error)
    assert decision is not None and decision.reason_code == "POLICY_DENY_MODEL" and "gpt-4o-mini" in (decision.message or "")
    assert endpoint.requests == []  # nothing was sent
    assert refused == 1  # one model call meant, one refused decision
    assert h.tree(spans) == ["invoke_workflow Agent workflow", "  invoke_agent weather_agent", "    chat gpt-4o-mini"]
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    (client,) = [span for span in spans if span.kind == SpanKind.CLIENT]
    assert client.parent.span_id == agent.context.span_id
    assert client.attributes["genops.policy.result"] == "BLOCKED" and client.attributes["gen_ai.agent.name"] == "weather_agent"
    assert agent.status.status_code == StatusCode.ERROR and agent.attributes["error.type"] == "_OTHER"
    assert agent.attributes["genops.unit.blocked_calls"] == 1 and agent.attributes["genops.cost.total"] == 0.0


def test_an_exhausted_budget_ends_the_run_at_one_refused_decision(instrumented, endpoint, h):
    error, spans, refused = _run(endpoint, NO_BUDGET, api="chat")
    assert isinstance(error, openai.RateLimitError)
    decision = policy_decision(error)
    assert decision is not None and decision.reason_code == "BUDGET_EXCEEDED"
    assert endpoint.requests == [] and refused == 1
    (agent,) = h.by_name(spans, "invoke_agent weather_agent")
    assert agent.attributes["genops.unit.blocked_calls"] == 1


def test_opt_in_retries_do_not_repeat_a_model_block(instrumented, endpoint, h):
    error, spans, refused = _run(endpoint, BLOCKED, RETRIES)
    assert policy_decision(error).reason_code == "POLICY_DENY_MODEL"
    assert refused == 1 and endpoint.requests == []


def test_opt_in_retries_do_not_repeat_a_budget_refusal(instrumented, endpoint, h):
    # A 429 that provider_suggested() would retry: the plugin's advice for a refusal is an abort.
    error, spans, refused = _run(endpoint, NO_BUDGET, RETRIES)
    assert policy_decision(error).reason_code == "BUDGET_EXCEEDED" and endpoint.requests == []
    assert refused == 1
    # Even a policy that retries every 429 whatever the provider advises.
    settings = ModelSettings(retry=ModelRetrySettings(max_retries=3, backoff={"initial_delay": 0, "max_delay": 0}, policy=retry_policies.http_status([429])))
    error, spans, refused = _run(endpoint, NO_BUDGET, settings, api="chat")
    assert policy_decision(error).reason_code == "BUDGET_EXCEEDED" and refused == 1


def test_other_errors_are_retried_as_the_sdk_advises(rec, endpoint, h):
    endpoint.failures = [429]  # the provider's own rate limit, once
    agent = Agent(name="weather_agent", instructions="Be brief.", model=endpoint.model(), model_settings=RETRIES)
    assert Runner.run_sync(agent, "Hi").final_output == "Hello."
    assert len(endpoint.requests) == 2  # retried once by the SDK, as without GenOps
    clients = [span for span in rec.spans() if span.kind == SpanKind.CLIENT]
    assert [span.status.status_code for span in clients] == [StatusCode.ERROR, StatusCode.UNSET]


def _agent_as_tool(endpoint, **tool_options):
    endpoint.tool_arguments = {"input": "Paris"}
    inner = Agent(name="forecast_agent", instructions="Forecast.", model=endpoint.model("chat"))
    inner.model.model = "gpt-4o"  # the only model blocked below
    tool = inner.as_tool(tool_name="ask_forecaster", tool_description="Ask the forecaster.", **tool_options)
    return Agent(name="weather_agent", instructions="Be brief.", tools=[tool], model=endpoint.model("chat"))


def test_a_refusal_inside_an_agent_used_as_a_tool(instrumented, endpoint, h):
    # With the tool's failures raised (failure_error_function=None), the run ends and the
    # decision is found in the SDK's UserError.
    with capture(config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o"})) as recorded:
        with pytest.raises(UserError) as raised:
            Runner.run_sync(_agent_as_tool(endpoint, failure_error_function=None), "Weather in Paris?")
        spans, refused = recorded.spans(), _refused(recorded)
    assert policy_decision(raised.value).reason_code == "POLICY_DENY_MODEL"
    assert refused == 1 and [request["model"] for request in endpoint.requests] == ["gpt-4o-mini"]
    assert h.tree(spans) == [
        "invoke_workflow Agent workflow",
        "  invoke_agent weather_agent",
        "    chat gpt-4o-mini",
        "    execute_tool ask_forecaster",
        "      invoke_agent forecast_agent",
        "        chat gpt-4o",
    ]
    (tool,) = h.by_name(spans, "execute_tool ask_forecaster")
    assert tool.status.status_code == StatusCode.ERROR and tool.attributes["genops.unit.blocked_calls"] == 1


def test_by_default_a_tools_refusal_goes_back_to_the_model_and_the_run_goes_on(instrumented, endpoint, h):
    # The SDK's default failure_error_function turns the tool's error into a message for the
    # model: nothing is raised; the refusal is on the spans.
    with capture(config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o"})) as recorded:
        result = Runner.run_sync(_agent_as_tool(endpoint), "Weather in Paris?")
        spans, refused = recorded.spans(), _refused(recorded)
    assert result.final_output == endpoint.reply and refused == 1
    assert endpoint.requests[-1]["messages"][-1]["content"] == "An error occurred while running the tool. Please try again."
    (workflow,) = h.by_name(spans, "invoke_workflow Agent workflow")
    assert workflow.attributes["genops.unit.blocked_calls"] == 1 and workflow.attributes["genops.unit.calls"] == 2  # blocked calls are counted apart
