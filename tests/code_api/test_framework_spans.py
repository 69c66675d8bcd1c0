"""A framework's own spans through GenOps' providers (``following_tracer_provider(on_span=...)``):
an agent span opened with ``start_span`` and made current with ``use_span`` is a GenOps run as one
opened with ``start_as_current_span`` is, and a run whose body fails is marked failed.
The real OpenAI SDK against the local endpoint of conftest.py; a real OTel SDK (capture)."""

from __future__ import annotations

from typing import Any, Mapping

import pytest
from opentelemetry.trace import use_span

from genops_autoinstrument.api.providers import following_tracer_provider, run_on_span


def _on_span(span: Any, name: str, attributes: Mapping[str, Any]) -> Any:
    """A framework plugin's hook: its agent spans are GenOps runs."""
    if attributes.get("gen_ai.operation.name") == "invoke_agent":
        return run_on_span(span, "support-agent", {"gen_ai.agent.name": "support-agent"})
    return None


def _by_name(spans: list[Any]) -> dict[str, Any]:
    return {span.name: span for span in spans}


def test_an_agent_span_from_start_span_and_use_span_is_a_run(recorded: Any, endpoint: Any, h: Any) -> None:
    tracer = following_tracer_provider(on_span=_on_span).get_tracer("agent-framework")
    client = endpoint.client()
    span = tracer.start_span("invoke_agent support-agent", attributes={"gen_ai.operation.name": "invoke_agent"})
    with use_span(span, end_on_exit=True):
        h.chat(client)
    spans = _by_name(recorded.spans())
    agent = spans["invoke_agent support-agent"]
    (call,) = [s for s in spans.values() if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert call.parent is not None and call.parent.span_id == agent.context.span_id
    assert call.attributes["gen_ai.agent.name"] == "support-agent"
    assert agent.attributes["genops.unit.name"] == "support-agent"
    assert agent.attributes["genops.unit.calls"] == 1
    assert agent.attributes["genops.cost.total"] == pytest.approx(call.attributes["genops.cost.total"])
    unit_costs = recorded.metrics()["genops.unit.cost"]
    assert [attributes["genops.unit.name"] for attributes, _ in unit_costs] == ["support-agent"]


def test_a_call_after_the_start_span_agent_ended_is_not_in_its_run(recorded: Any, endpoint: Any, h: Any) -> None:
    tracer = following_tracer_provider(on_span=_on_span).get_tracer("agent-framework")
    client = endpoint.client()
    span = tracer.start_span("invoke_agent support-agent", attributes={"gen_ai.operation.name": "invoke_agent"})
    span.end()
    h.chat(client)
    calls = [s for s in recorded.spans() if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert len(calls) == 1 and "gen_ai.agent.name" not in calls[0].attributes


@pytest.mark.parametrize("opened_with", ["start_as_current_span", "start_span"])
def test_a_run_whose_body_fails_is_marked_failed(recorded: Any, endpoint: Any, h: Any, opened_with: str) -> None:
    tracer = following_tracer_provider(on_span=_on_span).get_tracer("agent-framework")
    attributes = {"gen_ai.operation.name": "invoke_agent"}
    with pytest.raises(LookupError):
        if opened_with == "start_as_current_span":
            with tracer.start_as_current_span("invoke_agent support-agent", attributes=attributes):
                raise LookupError("no such tool")
        else:
            with tracer.start_span("invoke_agent support-agent", attributes=attributes):
                raise LookupError("no such tool")
    (agent,) = recorded.spans()
    assert agent.attributes["genops.unit.name"] == "support-agent"
    assert agent.attributes["error.type"] == "LookupError"
