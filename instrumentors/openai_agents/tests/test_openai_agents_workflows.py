"""Workflows: handoffs between agents, several runs in one trace, the trace's metadata (trusted like
baggage), GenOps' processor beside the application's and the SDK's, and uninstrumenting."""

from __future__ import annotations

import subprocess
import sys

import pytest
from agents import Agent, Runner, TracingProcessor, add_trace_processor, function_tool, trace
from agents.tracing import get_trace_provider
from opentelemetry.trace import SpanKind

from genops_autoinstrument import config, track
from genops_autoinstrument.api.testing import capture


@function_tool
def lookup_invoice(number: str) -> str:
    """An invoice's status."""
    return f"invoice {number}: paid"


def _clients(spans):
    return [span for span in spans if span.kind == SpanKind.CLIENT]


def test_a_handoff_gives_each_agent_its_span_and_its_cost(rec, endpoint, h):
    billing = Agent(name="billing_agent", instructions="Answer billing questions.", model=endpoint.model())
    triage = Agent(name="triage_agent", instructions="Route the question.", handoffs=[billing], model=endpoint.model())
    result = Runner.run_sync(triage, "Was my invoice paid?")
    assert result.last_agent is billing
    assert endpoint.requests[0]["tools"][0]["name"] == "transfer_to_billing_agent"  # the endpoint calls it

    spans = rec.spans()
    assert h.tree(spans) == [
        "invoke_workflow Agent workflow",
        "  invoke_agent triage_agent",
        "    chat gpt-4o-mini",
        "  invoke_agent billing_agent",
        "    chat gpt-4o-mini",
    ]
    (triage_span,) = h.by_name(spans, "invoke_agent triage_agent")
    (billing_span,) = h.by_name(spans, "invoke_agent billing_agent")
    assert triage_span.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TOOL_USAGE), rel=1e-9)
    assert billing_span.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TEXT_USAGE), rel=1e-9)
    assert [client.attributes["gen_ai.agent.name"] for client in sorted(_clients(spans), key=lambda s: s.start_time)] == ["triage_agent", "billing_agent"]
    costs = {dims["gen_ai.agent.name"]: point.value for dims, point in rec.metrics()["genops.cost"]}
    assert costs == {"triage_agent": pytest.approx(h.cost(h.TOOL_USAGE), rel=1e-9), "billing_agent": pytest.approx(h.cost(h.TEXT_USAGE), rel=1e-9)}
    (workflow,) = h.by_name(spans, "invoke_workflow Agent workflow")
    assert workflow.attributes["genops.unit.calls"] == 2
    assert workflow.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE), rel=1e-9)


def test_a_guardrail_that_runs_an_agent_is_a_step_of_the_agent_it_guards(rec, endpoint, h):
    from agents import GuardrailFunctionOutput, input_guardrail

    checker = Agent(name="checker_agent", instructions="Is this about billing?", model=endpoint.model())

    @input_guardrail(name="billing_only")
    async def billing_only(context, agent, question):
        verdict = await Runner.run(checker, question, context=context.context)
        return GuardrailFunctionOutput(output_info=verdict.final_output, tripwire_triggered=False)

    agent = Agent(name="billing_agent", instructions="Be brief.", tools=[lookup_invoice], input_guardrails=[billing_only], model=endpoint.model())
    assert Runner.run_sync(agent, "Was invoice 42 paid?").final_output == endpoint.reply

    spans = rec.spans()
    (guarded,) = h.by_name(spans, "invoke_agent billing_agent")
    (guardrail,) = h.by_name(spans, "guardrail billing_only")
    (checking,) = h.by_name(spans, "invoke_agent checker_agent")  # the guardrail's own run, inside it
    assert guardrail.parent.span_id == guarded.context.span_id and checking.parent.span_id == guardrail.context.span_id
    assert sorted(span.name for span in h.children(spans, guarded)) == ["chat gpt-4o-mini", "chat gpt-4o-mini", "execute_tool lookup_invoice", "guardrail billing_only"]
    (check_call,) = h.children(spans, checking)
    assert check_call.kind == SpanKind.CLIENT and check_call.attributes["gen_ai.agent.name"] == "checker_agent"
    assert guardrail.attributes["genops.unit.calls"] == 1
    assert guarded.attributes["genops.unit.calls"] == 3  # its own two calls and its guardrail's
    assert guarded.attributes["genops.cost.total"] == pytest.approx(h.cost(h.TOOL_USAGE) + 2 * h.cost(h.TEXT_USAGE), rel=1e-9)
    costs = {dims["gen_ai.agent.name"]: point.value for dims, point in rec.metrics()["genops.cost"]}
    assert costs == {"billing_agent": pytest.approx(h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE), rel=1e-9), "checker_agent": pytest.approx(h.cost(h.TEXT_USAGE), rel=1e-9)}


def test_the_applications_trace_is_one_workflow_around_its_runs_inside_track(rec, endpoint, h):
    agent = Agent(name="billing_agent", instructions="Be brief.", tools=[lookup_invoice], model=endpoint.model("chat"))
    with track("support-ticket") as ticket:
        with trace("Support", group_id="thread_8Kq2"):
            Runner.run_sync(agent, "Was invoice 42 paid?")
            Runner.run_sync(agent, "And invoice 43?")

    spans = rec.spans()
    assert h.tree(spans) == [
        "support-ticket",
        "  invoke_workflow Support",
        "    invoke_agent billing_agent",
        "      chat gpt-4o-mini",
        "      execute_tool lookup_invoice",
        "      chat gpt-4o-mini",
        "    invoke_agent billing_agent",
        "      chat gpt-4o-mini",
        "      execute_tool lookup_invoice",
        "      chat gpt-4o-mini",
    ]
    (workflow,) = h.by_name(spans, "invoke_workflow Support")
    assert workflow.attributes["gen_ai.conversation.id"] == "thread_8Kq2"
    assert workflow.attributes["genops.unit.calls"] == 4
    total = 2 * (h.cost(h.TOOL_USAGE) + h.cost(h.TEXT_USAGE))
    assert workflow.attributes["genops.cost.total"] == pytest.approx(total, rel=1e-9)
    assert ticket.cost == pytest.approx(total, rel=1e-9)  # the application's unit includes the workflow


def test_trace_metadata_attributes_only_through_the_trusted_keys(instrumented, endpoint, h):
    from agents import RunConfig

    agent = Agent(name="billing_agent", instructions="Be brief.", model=endpoint.model())
    metadata = {"genops.customer_id": "acme", "genops.team": "not-trusted", "user": "x"}
    with capture(config.load({"GENOPS_BAGGAGE_KEYS": "customer_id"})) as recorded:
        Runner.run_sync(agent, "Hi", run_config=RunConfig(trace_metadata=metadata))
        spans = recorded.spans()
        assert len(spans) == 3
        for span in spans:
            assert span.attributes["genops.customer_id"] == "acme"
            assert "genops.team" not in span.attributes
        costs = recorded.metrics()["genops.cost"]
        assert [(dims["genops.customer_id"], dims["gen_ai.agent.name"]) for dims, _ in costs] == [("acme", "billing_agent")]
    with capture(config.load({})) as recorded:  # nothing trusted: metadata attributes nothing
        Runner.run_sync(agent, "Hi", run_config=RunConfig(trace_metadata=metadata))
        assert all("genops.customer_id" not in span.attributes for span in recorded.spans())


class _Counting(TracingProcessor):
    """An application's own processor: counts what the SDK gives it."""

    def __init__(self) -> None:
        self.traces = self.spans = 0

    def on_trace_start(self, trace) -> None:
        self.traces += 1

    def on_trace_end(self, trace) -> None:
        pass

    def on_span_start(self, span) -> None:
        pass

    def on_span_end(self, span) -> None:
        self.spans += 1

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


def test_the_applications_processors_and_the_sdks_exporter_stay_and_genops_records_once(rec, endpoint, h):
    from agents.tracing.processors import default_processor
    from genops_instrumentation_openai_agents import OpenAIAgentsInstrumentor, processor

    provider = get_trace_provider()
    mine = _Counting()
    add_trace_processor(mine)
    try:
        OpenAIAgentsInstrumentor().uninstrument()
        OpenAIAgentsInstrumentor().instrument()  # activated again: still one GenOps processor
        processors = provider._multi_processor._processors  # what the SDK calls, in order
        assert processors.count(processor()) == 1 and default_processor() in processors and mine in processors
        Runner.run_sync(Agent(name="billing_agent", instructions="Be brief.", model=endpoint.model()), "Hi")
    finally:
        provider.set_processors([p for p in provider._multi_processor._processors if p is not mine])
    assert mine.traces == 1 and mine.spans >= 3  # the application's processor saw the run
    assert h.tree(rec.spans()) == ["invoke_workflow Agent workflow", "  invoke_agent billing_agent", "    chat gpt-4o-mini"]


def test_an_application_that_replaces_the_processors_keeps_genops_with_processor(rec, endpoint, h):
    from agents import set_trace_processors
    from genops_instrumentation_openai_agents import processor

    provider = get_trace_provider()
    before = list(provider._multi_processor._processors)
    mine = _Counting()
    set_trace_processors([mine, processor()])  # the SDK's exporter dropped by the application, GenOps kept
    try:
        Runner.run_sync(Agent(name="billing_agent", instructions="Be brief.", model=endpoint.model()), "Hi")
    finally:
        provider.set_processors(before)
    assert mine.traces == 1
    assert h.tree(rec.spans()) == ["invoke_workflow Agent workflow", "  invoke_agent billing_agent", "    chat gpt-4o-mini"]


def test_uninstrumented_runs_record_no_units(instrumented, endpoint, h):
    from genops_instrumentation_openai_agents import OpenAIAgentsInstrumentor

    OpenAIAgentsInstrumentor().uninstrument()
    with capture(config.load({})) as recorded:
        Runner.run_sync(Agent(name="billing_agent", instructions="Be brief.", model=endpoint.model()), "Hi")
        spans = recorded.spans()
    assert [span.name for span in spans] == ["chat gpt-4o-mini"]  # the provider plugin still records the call
    assert "gen_ai.agent.name" not in spans[0].attributes
    OpenAIAgentsInstrumentor().instrument()


def test_importing_the_plugin_imports_no_agents_sdk():
    code = "import sys, genops_instrumentation_openai_agents; print(sorted(m for m in sys.modules if m == 'agents' or m.startswith(('agents.', 'openai'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
