"""A pydantic-ai agent with a tool, two model calls, on GenOps' providers: one trace, counted once."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.api.testing import capture

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="pydantic-ai-slim 2.78+, the plugin's range, requires Python 3.11")


def _chat_spans(spans: list[Any]) -> list[Any]:
    return [span for span in spans if span.attributes.get("gen_ai.operation.name") == "chat"]


def test_one_trace_per_run_with_pydantic_ai_spans_and_one_client_span_per_call(rec: Any, endpoint: Any, h: Any) -> None:
    from opentelemetry.trace import SpanKind

    result = endpoint.agent().run_sync("What is the weather in Paris?")
    assert result.output == "It is 18°C and sunny in Paris."
    spans = rec.spans()
    assert h.tree(spans) == ["invoke_agent weather", "  chat gpt-4o-mini", "  execute_tool get_weather", "  chat gpt-4o-mini"]
    assert len({span.context.trace_id for span in spans}) == 1
    assert all(span.instrumentation_scope.name == "pydantic-ai" for span in spans)  # pydantic-ai's own spans, none of GenOps'
    calls = _chat_spans(spans)
    assert [span.kind for span in calls] == [SpanKind.CLIENT, SpanKind.CLIENT]
    assert [(span.attributes["gen_ai.usage.input_tokens"], span.attributes["gen_ai.usage.output_tokens"]) for span in calls] == [h.TOOL_USAGE, h.TEXT_USAGE]
    assert [span.attributes["genops.cost.total"] for span in calls] == [pytest.approx(h.cost(h.TOOL_USAGE)), pytest.approx(h.cost(h.TEXT_USAGE))]
    assert all(span.attributes["genops.team"] == "search" and span.attributes["gen_ai.agent.name"] == "weather" for span in calls)
    (tool,) = [span for span in spans if span.name == "execute_tool get_weather"]
    assert tool.attributes["gen_ai.tool.name"] == "get_weather"


def test_the_agent_span_carries_the_rolled_up_cost_of_its_calls(rec: Any, endpoint: Any, h: Any) -> None:
    endpoint.agent().run_sync("What is the weather in Paris?")
    spans = rec.spans()
    (run,) = [span for span in spans if span.name == "invoke_agent weather"]
    calls = _chat_spans(spans)
    assert run.attributes["genops.cost.total"] == pytest.approx(sum(span.attributes["genops.cost.total"] for span in calls))
    assert run.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE))
    assert run.attributes["genops.unit.calls"] == 2
    assert run.attributes["gen_ai.agent.name"] == "weather"
    # Token totals on the run span stay pydantic-ai's own (aggregated), never a second gen_ai.usage.*.
    assert "gen_ai.usage.input_tokens" not in run.attributes
    assert run.attributes["gen_ai.aggregated_usage.input_tokens"] == h.TOOL_USAGE[0] + h.TEXT_USAGE[0]


def test_tokens_and_cost_are_counted_once_with_the_agent_as_a_dimension(rec: Any, endpoint: Any, h: Any) -> None:
    endpoint.agent().run_sync("What is the weather in Paris?")
    rec.spans()
    metrics = rec.metrics()
    tokens = {attributes["gen_ai.token.type"]: point.sum for attributes, point in metrics["gen_ai.client.token.usage"]}
    assert tokens == {"input": h.TOOL_USAGE[0] + h.TEXT_USAGE[0], "output": h.TOOL_USAGE[1] + h.TEXT_USAGE[1]}
    assert all(attributes["gen_ai.agent.name"] == "weather" for attributes, _ in metrics["gen_ai.client.token.usage"])
    ((attributes, point),) = metrics["genops.cost"]
    assert attributes["gen_ai.agent.name"] == "weather" and attributes["genops.team"] == "search"
    assert point.value == pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE))
    assert "operation.cost" not in metrics  # pydantic-ai's own estimate would be a second cost


def test_two_agents_are_two_dimensions(rec: Any, endpoint: Any, h: Any) -> None:
    endpoint.agent("weather").run_sync("What is the weather in Paris?")
    endpoint.agent("travel").run_sync("Should I pack an umbrella for Paris?")
    rec.spans()
    costs = {attributes["gen_ai.agent.name"]: point.value for attributes, point in rec.metrics()["genops.cost"]}
    assert costs == {"weather": pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE)), "travel": pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE))}


def test_the_first_run_is_traced_although_nothing_was_set_up_before_it(instrumented: None, endpoint: Any, settings: Any) -> None:
    # The agent is built, and pydantic-ai's settings handed over, before GenOps has an engine or
    # providers: the first span pydantic-ai opens finds them.
    agent = endpoint.agent()
    with capture(settings) as recorded:
        agent.run_sync("What is the weather in Paris?")
        assert [span.name for span in recorded.spans()][-1] == "invoke_agent weather"


def test_the_application_choice_is_never_overridden(endpoint: Any, settings: Any) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from pydantic_ai import Agent
    from pydantic_ai.models.instrumented import InstrumentationSettings

    from genops_instrumentation_openai import OpenAIInstrumentor
    from genops_instrumentation_pydantic_ai import PydanticAIInstrumentor

    exporter = InMemorySpanExporter()
    own = TracerProvider()
    own.add_span_processor(SimpleSpanProcessor(exporter))
    theirs = InstrumentationSettings(tracer_provider=own)
    Agent.instrument_all(theirs)
    openai_plugin, plugin = OpenAIInstrumentor(), PydanticAIInstrumentor()
    openai_plugin.instrument()
    plugin.instrument()
    try:
        assert Agent._instrument_default is theirs
        with capture(settings) as recorded:
            endpoint.agent().run_sync("What is the weather in Paris?")
            assert recorded.spans() == []  # pydantic-ai's spans are the application's, in its provider
        calls = _chat_spans(list(exporter.get_finished_spans()))
        assert len(calls) == 2 and all("genops.cost.total" in span.attributes for span in calls)  # enriched there, once
    finally:
        plugin.uninstrument()
        openai_plugin.uninstrument()
        assert Agent._instrument_default is theirs  # uninstrument takes back only GenOps' own
        Agent.instrument_all(False)


def test_uninstrument_takes_genops_settings_back(endpoint: Any) -> None:
    from pydantic_ai import Agent

    from genops_instrumentation_pydantic_ai import PydanticAIInstrumentor

    plugin = PydanticAIInstrumentor()
    plugin.instrument()
    assert Agent._instrument_default is not False
    plugin.uninstrument()
    assert Agent._instrument_default is False


def test_prompts_are_recorded_only_on_the_standard_opt_in(rec: Any, endpoint: Any) -> None:
    # pydantic-ai keeps the messages' shape (roles, parts, tool names); their text stays out
    # unless OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT opts in.
    endpoint.agent().run_sync("What is the weather in Paris?")
    spans = rec.spans()
    assert any("gen_ai.input.messages" in span.attributes for span in spans)
    assert not any("Paris" in str(value) for span in spans for value in span.attributes.values())


def test_prompts_are_recorded_on_the_opt_in(instrumented: None, endpoint: Any) -> None:
    from genops_instrumentation_pydantic_ai import PydanticAIInstrumentor

    settings = config.load({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"})
    previous = config._current
    config.set_current(settings)
    plugin = PydanticAIInstrumentor()
    try:  # the settings handed to pydantic-ai are read when the plugin installs them
        plugin.uninstrument()
        plugin.instrument()
        with capture(settings) as recorded:
            endpoint.agent().run_sync("What is the weather in Paris?")
            assert any("Paris" in str(span.attributes.get("gen_ai.input.messages")) for span in recorded.spans())
    finally:
        config.set_current(previous)


@pytest.mark.parametrize(
    ("environment", "reason", "error"),
    [
        ({"GENOPS_BLOCKED_MODELS": "gpt-4o-mini"}, "POLICY_DENY_MODEL", "ModelAuthenticationError"),
        ({"GENOPS_BUDGETS": "global=0.00003/total", "GENOPS_LEDGER_URL": "memory://"}, "BUDGET_EXCEEDED", "ModelQuotaExceededError"),
    ],
)
def test_a_refused_call_surfaces_through_pydantic_ai_and_ends_the_run_with_one_decision(instrumented: None, endpoint: Any, environment: dict[str, str], reason: str, error: str) -> None:
    from pydantic_ai.exceptions import ModelHTTPError

    from genops_autoinstrument import PolicyViolation, policy_decision

    with capture(config.load(environment)) as recorded:
        agent = endpoint.agent()  # the OpenAI SDK's default retries, pydantic-ai's default settings
        with pytest.raises(ModelHTTPError) as raised:
            agent.run_sync("What is the weather in Paris?")
        assert type(raised.value).__name__ == error  # pydantic-ai's own error, re-raised from GenOps' one
        assert not isinstance(raised.value, PolicyViolation)
        decision = policy_decision(raised.value)
        assert decision is not None and decision.reason_code == reason
        assert endpoint.requests == []  # nothing reached the endpoint
        # One refused decision for the one model call the run meant to make: no SDK or framework retry.
        decisions = [(attributes["genops.policy.result"], point.value) for attributes, point in recorded.metrics()["genops.policy.decisions"]]
        assert decisions == [("BLOCKED", 1)]
        spans = recorded.spans()
        assert _names(spans) == ["invoke_agent weather", "chat gpt-4o-mini"]
        (call,) = _chat_spans(spans)
        assert call.attributes["genops.policy.result"] == "BLOCKED" and call.attributes["genops.policy.reason_code"] == reason
        assert call.attributes["error.type"] == reason
        assert call.status.status_code.name == "ERROR"


def _names(spans: list[Any]) -> list[str]:
    return [span.name for span in sorted(spans, key=lambda span: span.start_time)]


def test_a_streamed_run_is_counted_once(rec: Any, endpoint: Any, h: Any) -> None:
    import asyncio

    async def run() -> str:
        async with endpoint.agent().run_stream("What is the weather in Paris?") as streamed:
            return await streamed.get_output()

    assert asyncio.run(run()) == "It is 18°C and sunny in Paris."
    spans = rec.spans()
    calls = _chat_spans(spans)
    assert len(calls) == 2 and all(span.instrumentation_scope.name == "pydantic-ai" for span in spans)
    assert sum(span.attributes["genops.cost.total"] for span in calls) == pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE))
    tokens = {attributes["gen_ai.token.type"]: point.sum for attributes, point in rec.metrics()["gen_ai.client.token.usage"]}
    assert tokens == {"input": h.TOOL_USAGE[0] + h.TEXT_USAGE[0], "output": h.TOOL_USAGE[1] + h.TEXT_USAGE[1]}
