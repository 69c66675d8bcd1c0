"""Framework runs (``api.runs.Runs``) whose end runs in another context than their start, or never
arrives: the scope they left current stops attributing, parenting and rolling up calls (real
OpenAI SDK against a local endpoint, real engine through ``capture``); and past the cap of open
runs the oldest are ended as abandoned, so later runs are still recorded."""

from __future__ import annotations

import asyncio
import contextvars

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import attribution, config, semconv, track
from genops_autoinstrument.api import runs as runs_module
from genops_autoinstrument.api.runs import Runs
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.engine.units import current_scope, current_unit
from genops_autoinstrument.governance.enforcing import EnforcingGovernor

AGENT = "gen_ai.agent.name"


def calls(spans):
    return [span for span in spans if span.kind == SpanKind.CLIENT]


def unit_span(spans, name):
    (span,) = [span for span in spans if span.kind == SpanKind.INTERNAL and span.attributes.get(semconv.GENOPS_UNIT_NAME) == name]
    return span


def test_a_run_ended_in_another_context_is_no_longer_the_current_scope(recorded):
    runs = Runs("test")
    runs.start("k", None, "agent a1", attribution={AGENT: "a1"})
    assert current_scope().attribution == {AGENT: "a1"} and current_unit() is runs.unit("k")
    contextvars.copy_context().run(runs.end, "k")  # the end event arrives elsewhere
    assert current_scope() is None and current_unit() is None
    assert len(runs) == 0


def test_calls_after_a_run_ended_elsewhere_get_neither_its_attribution_nor_its_unit(recorded, endpoint, h):
    client = endpoint.client()
    runs = Runs("test")
    runs.start("k", None, "agent a1", attribution={AGENT: "a1"})
    h.chat(client)  # inside the run
    contextvars.copy_context().run(runs.end, "k")
    h.chat(client)  # after it ended, in the context it started in
    spans = recorded.spans()
    run = unit_span(spans, "agent a1")
    inside, after = calls(spans)
    assert inside.attributes[AGENT] == "a1" and inside.parent.span_id == run.context.span_id
    assert AGENT not in after.attributes and semconv.GENOPS_UNIT_NAME not in after.attributes
    assert after.parent is None
    assert run.attributes[semconv.GENOPS_UNIT_CALLS] == 1, "the later call is not rolled up into the ended run"


def test_an_attribution_block_inside_an_ended_run_keeps_its_own_attribution(recorded, endpoint, h):
    client = endpoint.client()
    runs = Runs("test")
    with attribution(team="search"):
        runs.start("k", None, "agent a1", attribution={AGENT: "a1"})
        with attribution(customer_id="acme"):
            contextvars.copy_context().run(runs.end, "k")
            h.chat(client)
            assert current_scope().attribution == {"genops.team": "search", "genops.customer_id": "acme"}
    (span,) = calls(recorded.spans())
    assert span.attributes["genops.team"] == "search" and span.attributes["genops.customer_id"] == "acme"
    assert AGENT not in span.attributes and span.parent is None


def test_a_run_ended_elsewhere_gives_way_to_the_enclosing_live_unit(recorded, endpoint, h):
    client = endpoint.client()
    runs = Runs("test")
    with track("request"):
        runs.start("k", None, "agent a1", attribution={AGENT: "a1"})
        contextvars.copy_context().run(runs.end, "k")
        h.chat(client)
        assert current_unit() is not None and current_unit().name == "request"
    spans = recorded.spans()
    (call,) = calls(spans)
    request = unit_span(spans, "request")
    assert call.parent.span_id == request.context.span_id and AGENT not in call.attributes
    assert unit_span(spans, "agent a1").attributes[semconv.GENOPS_UNIT_CALLS] == 0


def test_a_child_run_started_after_its_sibling_ended_elsewhere_is_not_inside_it(recorded):
    runs = Runs("test")
    runs.start("a", None, "first", attribution={AGENT: "a1"})
    contextvars.copy_context().run(runs.end, "a")
    other = Runs("other")  # another framework's run: its parent is whatever scope is live
    other.start("b", None, "second")
    second = other.unit("b")
    assert second.parent is None
    other.end("b")
    spans = recorded.spans()
    assert unit_span(spans, "second").parent is None
    assert AGENT not in unit_span(spans, "second").attributes


def test_async_run_ended_in_another_task_stops_attributing_the_starting_task(recorded, endpoint, h):
    client = endpoint.async_client()
    runs = Runs("test")

    async def main() -> None:
        runs.start("k", None, "agent a1", attribution={AGENT: "a1"})
        await asyncio.create_task(_end(runs, "k"))  # a callback handler's task ends it
        await h.achat(client)

    async def _end(runs: Runs, key: str) -> None:
        runs.end(key)

    asyncio.run(main())
    (span,) = calls(recorded.spans())
    assert AGENT not in span.attributes and span.parent is None


# An agent budget: an ended run's agent name must not keep charging (or blocking) its budget.
def test_an_agent_budget_no_longer_applies_once_the_run_ended_elsewhere(instrumentor, endpoint, h):
    settings = config.load({"GENOPS_BUDGETS": "agent=0.00002/day", "GENOPS_LEDGER_URL": "memory://"})
    client = endpoint.client()
    governor = EnforcingGovernor(settings)
    try:
        with capture(settings, governor=governor) as recorded:
            runs = Runs("test")
            runs.start("k", None, "agent a1", attribution={AGENT: "a1"})
            h.chat(client)
            h.chat(client)
            with pytest.raises(openai.RateLimitError):
                h.chat(client)  # the agent's budget is spent
            contextvars.copy_context().run(runs.end, "k")
            h.chat(client)  # no agent any more: not that budget
            spans = calls(recorded.spans())
    finally:
        governor.close()
    assert len(endpoint.requests) == 3
    assert spans[-1].attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED
    assert AGENT not in spans[-1].attributes


def test_past_the_cap_the_oldest_open_runs_end_as_abandoned(recorded, endpoint, h, monkeypatch):
    monkeypatch.setattr(runs_module, "_MAX_OPEN", 3)
    client = endpoint.client()
    runs = Runs("test")
    for number in range(3):
        contextvars.copy_context().run(runs.start, f"r{number}", None, f"run {number}")  # their ends never arrive
    runs.start("r3", None, "run 3", attribution={AGENT: "late"})  # the fourth: the oldest is evicted
    h.chat(client)
    runs.end("r3")
    runs.end("r0")  # an end arriving after its eviction: nothing more happens
    assert len(runs) == 2 and runs.unit("r0") is None and runs.unit("r1") is not None
    spans = recorded.spans()
    first = unit_span(spans, "run 0")
    assert first.attributes[semconv.ERROR_TYPE] == "abandoned"
    assert first.status.status_code == StatusCode.ERROR
    assert {span.attributes.get(semconv.GENOPS_UNIT_NAME) for span in spans if span.kind == SpanKind.INTERNAL} == {"run 0", "run 3"}
    late = unit_span(spans, "run 3")
    assert semconv.ERROR_TYPE not in late.attributes and late.attributes[semconv.GENOPS_UNIT_CALLS] == 1
    (call,) = calls(spans)
    assert call.attributes[AGENT] == "late" and call.parent.span_id == late.context.span_id


def test_an_evicted_run_left_current_in_its_context_stops_attributing_there(recorded, monkeypatch):
    monkeypatch.setattr(runs_module, "_MAX_OPEN", 1)
    runs = Runs("test")
    runs.start("old", None, "old", attribution={AGENT: "a1"})
    contextvars.copy_context().run(runs.start, "new", None, "new")
    assert current_scope() is None and runs.unit("old") is None
    runs.end("new")
    assert unit_span(recorded.spans(), "old").attributes[semconv.ERROR_TYPE] == "abandoned"


def test_a_context_that_outlived_a_track_block_no_longer_records_into_its_unit(recorded, endpoint, h):
    import contextvars

    from genops_autoinstrument import track

    with track("job"):
        outlived = contextvars.copy_context()  # what a task or thread started in the block keeps
    outlived.run(h.chat, endpoint.client())
    (call,) = [span for span in recorded.spans() if span.name.startswith("chat")]
    assert "genops.unit.name" not in call.attributes and call.parent is None
