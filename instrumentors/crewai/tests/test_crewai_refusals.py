"""A blocked or over-budget crew run: the refusal surfaces through what ``crew.kickoff()`` raises,
nothing is sent, and CrewAI's retries (3 LLM-level attempts on a 429, 3 agent attempts on any
error, its defaults) ask GenOps once: one refused decision per model call the crew meant to make."""

from __future__ import annotations

import asyncio

import openai
import pytest
from crewai import Agent, Crew, Task
from crewai.hooks import HookAborted
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import config, policy_decision
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.governance.enforcing import EnforcingGovernor


def _crew(endpoint, **llm_settings):
    agent = Agent(role="Weather reporter", goal="Report the weather", backstory="A concise reporter.", llm=endpoint.llm(**llm_settings))
    task = Task(name="weather-report", description="What is the weather in Paris?", expected_output="One sentence.", agent=agent)
    return Crew(agents=[agent], tasks=[task]), agent


def _clients(spans):
    return [span for span in spans if span.kind == SpanKind.CLIENT]


def test_a_blocked_model_is_one_refused_decision_found_through_the_crews_exception(instrumented, endpoint, h):
    crew, agent = _crew(endpoint)
    assert agent.max_retry_limit == 2  # CrewAI's default: two more attempts after a failed one
    with capture(config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"})) as recorded:
        with pytest.raises(Exception) as raised:
            crew.kickoff()
        refused, spans = h.refused_decisions(recorded), recorded.spans()
    decision = policy_decision(raised.value)
    assert decision is not None and decision.reason_code == "POLICY_DENY_MODEL"
    assert "gpt-4o-mini" in (decision.message or "")
    # The agent's retry was aborted through CrewAI's hooks; the SDK's native error is its cause.
    assert isinstance(raised.value, HookAborted) and isinstance(raised.value.__cause__, openai.PermissionDeniedError)
    assert refused == 1 and endpoint.requests == []  # one decision, nothing sent
    (client,) = _clients(spans)
    assert client.attributes["genops.policy.result"] == "BLOCKED"
    first, retried = sorted(h.by_name(spans, "invoke_agent Weather reporter"), key=lambda s: s.start_time)
    assert client.parent.span_id == first.context.span_id
    assert first.attributes["genops.unit.blocked_calls"] == 1 and first.attributes["genops.cost.total"] == 0.0
    assert retried.attributes["genops.unit.calls"] == 0  # the aborted retry made no call
    for span in (first, retried, *h.by_name(spans, "weather-report"), *h.by_name(spans, "crew")):
        assert span.status.status_code == StatusCode.ERROR


@pytest.mark.parametrize("native_async", [False, True], ids=["kickoff", "akickoff"])
def test_an_exhausted_budget_is_one_refused_decision_with_the_default_retries(instrumented, endpoint, h, native_async):
    """The budget's refusal is the SDK's RateLimitError (a 429), which CrewAI's LLM layer retries
    3 times and its agent 3 times: 9 refused decisions without the plugin, 1 with it."""
    settings = config.load({"GENOPS_BUDGETS": "team=0.0000001/day", "GENOPS_TEAM": "search", "GENOPS_LEDGER_URL": "memory://"})
    governor = EnforcingGovernor(settings)
    try:
        with capture(settings, governor=governor) as recorded:
            with pytest.raises(Exception) as raised:
                crew = _crew(endpoint)[0]
                asyncio.run(crew.akickoff()) if native_async else crew.kickoff()
            refused, spans = h.refused_decisions(recorded), recorded.spans()
    finally:
        governor.close()
    decision = policy_decision(raised.value)
    assert decision is not None and decision.reason_code == "BUDGET_EXCEEDED"
    assert isinstance(raised.value.__cause__, openai.RateLimitError)
    assert refused == 1 and len(_clients(spans)) == 1 and endpoint.requests == []


def test_a_real_rate_limit_is_still_retried_as_crewai_does(rec, endpoint, h):
    """Only GenOps' refusals are final: a provider's 429 is retried by CrewAI's LLM layer as before
    (the SDK's own retries off, so CrewAI's is the one under test)."""
    endpoint.status, endpoint.failures = 429, 1
    crew, _ = _crew(endpoint, max_retries=0)
    assert str(crew.kickoff()) == h.REPLY
    assert len(endpoint.requests) == 2  # the 429, then CrewAI's retry
    spans = rec.spans()
    assert [span.status.status_code == StatusCode.ERROR for span in sorted(_clients(spans), key=lambda s: s.start_time)] == [True, False]
    assert h.refused_decisions(rec) == 0


def test_a_later_run_after_a_refusal_asks_again(instrumented, endpoint, h):
    """The refusal stops the retries of that run only: the next kickoff is a new decision."""
    crew, _ = _crew(endpoint)
    with capture(config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"})):
        with pytest.raises(Exception):
            crew.kickoff()
    with capture(config.load({})) as recorded:
        assert str(crew.kickoff()) == h.REPLY
        assert len(_clients(recorded.spans())) == 1
    assert len(endpoint.requests) == 1


def test_without_agent_retries_the_crew_raises_the_sdks_native_error(instrumented, endpoint, h):
    agent = Agent(role="Weather reporter", goal="Report the weather", backstory="A concise reporter.", llm=endpoint.llm(), max_retry_limit=0)
    crew = Crew(agents=[agent], tasks=[Task(description="What is the weather in Paris?", expected_output="One sentence.", agent=agent)])
    with capture(config.load({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"})) as recorded:
        with pytest.raises(openai.PermissionDeniedError) as raised:
            crew.kickoff()
        assert h.refused_decisions(recorded) == 1
    assert policy_decision(raised.value).reason_code == "POLICY_DENY_MODEL"
    assert endpoint.requests == []
