"""``track(...)`` with the real OpenAI SDK: the unit span and its children, rolled-up costs of
nested units, unpriced calls, the unit-cost metric, failures, async, cost caps on every ledger,
and ``GENOPS_ENABLED=false``."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from genops_autoinstrument import PolicyViolation, attribution, config, semconv, track
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.governance.ledger.base import to_nanos
from genops_autoinstrument.governance.periods import window
from genops_autoinstrument.pricing.prices import price_call
from genops_autoinstrument.pricing.usage import Usage

COST = semconv.GENOPS_COST_TOTAL


def units(spans):
    return {span.name: span for span in spans if semconv.GENOPS_UNIT_NAME in span.attributes and span.kind == SpanKind.INTERNAL}


def calls(spans):
    return [span for span in spans if span.kind == SpanKind.CLIENT]


def inside(span, unit, spans):
    """Whether ``span`` descends from ``unit`` (through any nested unit)."""
    by_id = {s.context.span_id: s for s in spans}
    parent = span.parent
    while parent is not None:
        if parent.span_id == unit.context.span_id:
            return True
        parent = by_id[parent.span_id].parent if parent.span_id in by_id else None
    return False


def call_cost() -> float:
    """What one answered "Say hello" costs (12 input, 5 output tokens of gpt-4o-mini-2024-07-18)."""
    return price_call("openai", "gpt-4o-mini-2024-07-18", Usage(input_tokens=12, output_tokens=5)).total


def test_one_internal_unit_span_is_the_parent_of_every_call_inside(recorded, endpoint, h):
    client = endpoint.client()
    with track("rag-query", customer_id="acme") as unit:
        h.chat(client)
        thread = threading.Thread(target=h.chat, args=(client,))
        thread.start()
        thread.join()
        with ThreadPoolExecutor(1) as pool:
            pool.submit(h.chat, client).result()
    h.chat(client)  # after the unit
    assert isinstance(unit, track)
    spans = recorded.spans()
    (span,) = units(spans).values()
    assert span.name == "rag-query" and span.kind == SpanKind.INTERNAL
    assert span.attributes[semconv.GENOPS_UNIT_NAME] == "rag-query"
    assert span.attributes[semconv.GENOPS_CUSTOMER_ID] == "acme"
    children, after = calls(spans)[:3], calls(spans)[3]
    assert [child.parent.span_id for child in children] == [span.context.span_id] * 3
    assert all(child.context.trace_id == span.context.trace_id for child in children)
    assert [child.attributes[semconv.GENOPS_CUSTOMER_ID] for child in children] == ["acme"] * 3
    assert [child.attributes[semconv.GENOPS_UNIT_NAME] for child in children] == ["rag-query"] * 3
    assert after.parent is None and semconv.GENOPS_UNIT_NAME not in after.attributes
    assert span.attributes[semconv.GENOPS_UNIT_CALLS] == 3


def test_a_unit_is_a_child_of_the_current_span(recorded, endpoint, h):
    from opentelemetry import trace

    tracer = recorded.tracer_provider.get_tracer("application")
    with tracer.start_as_current_span("GET /search") as request_span:
        with track("rag-query"):
            h.chat(endpoint.client())
    spans = recorded.spans()
    unit = units(spans)["rag-query"]
    assert unit.parent.span_id == request_span.get_span_context().span_id
    assert calls(spans)[0].parent.span_id == unit.context.span_id
    assert trace.get_current_span() is trace.INVALID_SPAN  # everything detached again


def test_nested_units_roll_up_the_cost_calls_and_tokens_of_their_calls(recorded, endpoint, h):
    client = endpoint.client()
    with track("request"):
        h.chat(client)
        with track("retrieve"):
            h.chat(client)
            h.chat(client, h.UNPRICED_MODEL)
            with track("rerank"):
                h.chat(client)
        h.chat(client)
    spans = recorded.spans()
    found = units(spans)
    assert set(found) == {"request", "retrieve", "rerank"}
    assert found["retrieve"].parent.span_id == found["request"].context.span_id
    assert found["rerank"].parent.span_id == found["retrieve"].context.span_id
    expected = {"request": (5, 1), "retrieve": (3, 1), "rerank": (1, 0)}  # calls, unpriced calls
    for name, unit in found.items():
        mine = [call for call in calls(spans) if inside(call, unit, spans)]
        assert (len(mine), sum(COST not in call.attributes for call in mine)) == expected[name]
        assert unit.attributes[COST] == pytest.approx(sum(call.attributes.get(COST, 0.0) for call in mine), rel=1e-12)
        assert unit.attributes[semconv.GENOPS_COST_CURRENCY] == "USD"
        assert unit.attributes[semconv.GENOPS_UNIT_CALLS] == expected[name][0]
        assert unit.attributes[semconv.GENOPS_UNIT_UNPRICED_CALLS] == expected[name][1]
        assert unit.attributes[semconv.GENOPS_UNIT_FAILED_CALLS] == 0
        assert unit.attributes[semconv.GENOPS_UNIT_BLOCKED_CALLS] == 0
        for key in (semconv.GEN_AI_USAGE_INPUT_TOKENS, semconv.GEN_AI_USAGE_OUTPUT_TOKENS):
            assert unit.attributes[key] == sum(call.attributes[key] for call in mine)
    assert found["request"].attributes[COST] == pytest.approx(4 * call_cost(), rel=1e-9)
    assert found["request"].attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] == 5 * 12
    unpriced = [call for call in calls(spans) if call.attributes[semconv.GEN_AI_REQUEST_MODEL] == h.UNPRICED_MODEL]
    assert unpriced[0].attributes[semconv.GENOPS_COST_STATUS] == semconv.COST_STATUS_UNPRICED


def test_the_unit_cost_metric_has_the_unit_name_and_attribution(recorded, endpoint, h):
    client = endpoint.client()
    with attribution(feature="search"):
        for _ in range(2):
            with track("rag-query", customer_id="acme"):
                h.chat(client)
                h.chat(client)
    with track("empty"):
        pass
    points = recorded.metrics()[semconv.METRIC_UNIT_COST]
    by_name = {dims[semconv.GENOPS_UNIT_NAME]: (dims, point) for dims, point in points}
    dims, point = by_name["rag-query"]
    assert dims[semconv.GENOPS_CUSTOMER_ID] == "acme" and dims[semconv.GENOPS_FEATURE] == "search"
    unit_spans = [span for span in recorded.spans() if span.name == "rag-query"]
    assert point.value == pytest.approx(sum(span.attributes[COST] for span in unit_spans), rel=1e-12)
    assert point.value == pytest.approx(4 * call_cost(), rel=1e-9)
    assert by_name["empty"][1].value == 0.0


def test_a_failing_block_marks_the_unit_error_and_re_raises_the_same_exception(recorded, endpoint, h):
    failure = LookupError("no documents for this query")
    with pytest.raises(LookupError) as caught:
        with track("rag-query"):
            h.chat(endpoint.client())
            raise failure
    assert caught.value is failure
    spans = recorded.spans()
    unit = units(spans)["rag-query"]
    assert unit.status.status_code == StatusCode.ERROR
    assert unit.status.description == "no documents for this query"
    assert unit.attributes[semconv.ERROR_TYPE] == "LookupError"
    assert unit.attributes[semconv.GENOPS_UNIT_CALLS] == 1  # what ran before the failure still counts
    assert unit.attributes[COST] == pytest.approx(call_cost(), rel=1e-9)
    assert calls(spans)[0].status.status_code == StatusCode.UNSET


def test_a_failed_model_call_is_counted_as_failed(recorded, h):
    import httpx

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}})

    client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(refuse)))
    with track("agent"):
        with pytest.raises(openai.InternalServerError):
            h.chat(client)
    unit = units(recorded.spans())["agent"]
    assert unit.attributes[semconv.GENOPS_UNIT_CALLS] == 1 and unit.attributes[semconv.GENOPS_UNIT_FAILED_CALLS] == 1
    assert unit.attributes[COST] == 0.0 and unit.status.status_code == StatusCode.UNSET


def test_decorators_sync_and_async_each_call_its_own_unit(recorded, endpoint, h):
    sync_client, async_client = endpoint.client(), endpoint.async_client()

    @track("summarise")
    def summarise(text: str) -> str:
        return h.chat(sync_client).choices[0].message.content + text

    @track("answer", feature="qa")
    async def answer(number: int) -> tuple[int, str]:
        response = await h.achat(async_client)
        await asyncio.sleep(0)  # let the other unit's call interleave
        return number, response.id

    async def main() -> list[tuple[int, str]]:
        return list(await asyncio.gather(answer(1), answer(2)))

    assert summarise("!") == "Hello! How can I help you today?!"
    results = asyncio.run(main())
    assert [number for number, _ in results] == [1, 2] and results[0][1] != results[1][1]
    assert asyncio.iscoroutinefunction(answer) and answer.__name__ == "answer"
    spans = recorded.spans()
    answers = [span for span in spans if span.name == "answer"]
    assert len(answers) == 2 and answers[0].context.span_id != answers[1].context.span_id
    for unit in answers:
        (mine,) = [call for call in calls(spans) if call.parent and call.parent.span_id == unit.context.span_id]
        assert mine.attributes[semconv.GENOPS_FEATURE] == "qa"
        assert unit.attributes[semconv.GENOPS_UNIT_CALLS] == 1
        assert unit.attributes[COST] == pytest.approx(mine.attributes[COST], rel=1e-12)
    assert units(spans)["summarise"].attributes[semconv.GENOPS_UNIT_CALLS] == 1


def test_async_with_and_a_failing_async_function(recorded, endpoint, h):
    client = endpoint.async_client()

    @track("flaky")
    async def flaky() -> None:
        await h.achat(client)
        raise TimeoutError("tool timed out")

    async def main() -> None:
        async with track("outer"):
            await h.achat(client)
            with pytest.raises(TimeoutError):
                await flaky()

    asyncio.run(main())
    found = units(recorded.spans())
    assert found["flaky"].status.status_code == StatusCode.ERROR
    assert found["outer"].status.status_code == StatusCode.UNSET
    assert found["outer"].attributes[semconv.GENOPS_UNIT_CALLS] == 2


def test_track_needs_a_name_and_a_sane_cap():
    with pytest.raises(TypeError):
        track("")
    with pytest.raises(TypeError):
        track("agent", max_cost=-1)
    with pytest.raises(TypeError, match="unknown attribution key"):
        track("agent", customer="acme")


# --- cost caps ----------------------------------------------------------------------------------
@pytest.fixture(params=["no-ledger", "memory", "sqlite", "redis"])
def ledger_env(request: pytest.FixtureRequest, tmp_path) -> dict[str, str]:
    """No rule at all (the governor is inactive), or a budget that makes the governor active
    on a memory, a real SQLite file or a real redis-server ledger."""
    if request.param == "no-ledger":
        return {}
    urls = {"memory": lambda: "memory://", "sqlite": lambda: f"sqlite:///{tmp_path}/state/ledger.db", "redis": lambda: request.getfixturevalue("clean_redis")}
    return {"GENOPS_BUDGETS": "team=10/day", "GENOPS_TEAM": "agents", "GENOPS_LEDGER_URL": urls[request.param]()}


def test_a_cost_cap_stops_a_loop_at_the_first_call_that_would_exceed_it(instrumentor, endpoint, h, ledger_env):
    settings = config.load(ledger_env)
    estimate = price_call("openai", "gpt-4o-mini", Usage(input_tokens=3, output_tokens=20)).total  # "Say hello", max_tokens=20
    actual = call_cost()
    cap = 2 * actual + estimate + actual / 2  # calls 1-3 fit (2 spent + 1 estimate); the 4th would not (3 spent + 1 estimate)
    governor = EnforcingGovernor(settings) if ledger_env else None
    sent: list[int] = []
    client = endpoint.client()
    try:
        with capture(settings, governor=governor) as recorded:
            with pytest.raises(openai.RateLimitError) as caught:
                with track("agent", max_cost=cap):
                    for step in range(10):  # a runaway agent loop
                        h.chat(client)
                        sent.append(step)
            spans = recorded.spans()
            if governor is not None:
                key = f"budget|team|agents|day|{window('day', time.time()).key}"
                figures = governor.ledger.figures(key, time.time())
    finally:
        if governor is not None:
            governor.close()
    refused = caught.value
    assert isinstance(refused, PolicyViolation) and refused.code == "insufficient_quota"
    assert refused.reason_code == semconv.REASON_BUDGET_EXCEEDED and refused.policy_name == "unit:agent"
    assert sent == [0, 1, 2] and len(endpoint.requests) == 3, "nothing was sent past the cap"
    unit = units(spans)["agent"]
    answered, blocked = calls(spans)[:3], calls(spans)[3]
    assert len(calls(spans)) == 4
    assert blocked.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_BLOCKED
    assert blocked.attributes[semconv.GENOPS_POLICY_NAME] == "unit:agent"
    assert blocked.attributes[semconv.GENOPS_BUDGET_PERIOD] == "unit"
    assert blocked.attributes[semconv.GENOPS_BUDGET_ALLOCATED] == cap
    assert blocked.parent.span_id == unit.context.span_id and COST not in blocked.attributes
    assert unit.attributes[semconv.GENOPS_UNIT_MAX_COST] == cap
    assert unit.attributes[semconv.GENOPS_UNIT_CALLS] == 3 and unit.attributes[semconv.GENOPS_UNIT_BLOCKED_CALLS] == 1
    assert unit.attributes[COST] == pytest.approx(sum(call.attributes[COST] for call in answered), rel=1e-12)
    assert unit.attributes[COST] <= cap
    assert unit.status.status_code == StatusCode.ERROR
    if governor is not None:  # the budget was charged the three calls, and the refused call holds nothing
        assert all(call.attributes[semconv.GENOPS_POLICY_RESULT] == semconv.RESULT_ALLOWED for call in answered)
        assert figures.spent == sum(to_nanos(call.attributes[COST]) for call in answered)
        assert figures.reserved == 0


def test_a_cap_in_an_outer_unit_holds_calls_of_inner_units_and_of_threads(recorded, endpoint, h):
    client = endpoint.client()
    estimate = price_call("openai", "gpt-4o-mini", Usage(input_tokens=3, output_tokens=20)).total
    cap = call_cost() + estimate + call_cost() / 2  # room for two calls
    outcomes: list[str] = []

    def step() -> None:
        try:
            h.chat(client)
            outcomes.append("sent")
        except openai.RateLimitError as refused:
            outcomes.append(refused.policy_name)

    with track("task", max_cost=cap):
        with track("plan"):
            step()
        for _ in range(2):
            thread = threading.Thread(target=step)
            thread.start()
            thread.join()
    assert outcomes == ["sent", "sent", "unit:task"] and len(endpoint.requests) == 2
    found = units(recorded.spans())
    assert found["task"].attributes[semconv.GENOPS_UNIT_BLOCKED_CALLS] == 1
    assert found["plan"].attributes[semconv.GENOPS_UNIT_CALLS] == 1


def test_a_call_that_cannot_be_priced_counts_against_the_cap_but_not_in_the_cost(recorded, endpoint, h):
    estimate = price_call("openai", "gpt-4o-mini", Usage(input_tokens=3, output_tokens=20)).total
    endpoint.usage = None  # the answer carries no usage: the call cannot be priced
    client = endpoint.client()
    with track("agent", max_cost=estimate * 1.5):
        with track("step"):
            h.chat(client)  # charged its estimate against the cap
        with pytest.raises(openai.RateLimitError):
            h.chat(client)  # the estimate again would not fit
    found = units(recorded.spans())
    assert len(endpoint.requests) == 1
    for name in ("agent", "step"):  # the unit's cost is the sum of its priced calls: no guess in it
        assert found[name].attributes[COST] == 0.0
        assert found[name].attributes[semconv.GENOPS_UNIT_UNPRICED_CALLS] == 1
    assert found["agent"].attributes[semconv.GENOPS_UNIT_BLOCKED_CALLS] == 1
    assert recorded.metrics()[semconv.METRIC_UNIT_COST][0][1].value == 0.0


def test_a_model_no_price_table_knows_is_not_held_by_a_cap(recorded, endpoint, h, caplog):
    client = endpoint.client()
    with caplog.at_level("WARNING", logger="genops"), track("agent", max_cost=0.0):
        for _ in range(2):
            h.chat(client, h.UNPRICED_MODEL)  # a cap never blocks on a guess, like a budget
    assert len(endpoint.requests) == 2
    assert sum("cannot be priced" in record.getMessage() for record in caplog.records) == 1
    assert units(recorded.spans())["agent"].attributes[semconv.GENOPS_UNIT_UNPRICED_CALLS] == 2


def test_parallel_calls_under_a_cap_never_hold_more_than_it(recorded, endpoint, h):
    estimate = price_call("openai", "gpt-4o-mini", Usage(input_tokens=3, output_tokens=20)).total
    endpoint.delay = 0.02
    client = endpoint.client()
    with track("agent", max_cost=estimate * 1.9):  # room for one call in flight at a time
        with ThreadPoolExecutor(8) as pool:
            jobs = [pool.submit(h.chat, client) for _ in range(24)]
            errors = [job.exception() for job in jobs]
    refused = [error for error in errors if error is not None]
    assert all(isinstance(error, openai.RateLimitError) and error.policy_name == "unit:agent" for error in refused)
    assert endpoint.most_in_flight == 1 and 1 <= len(endpoint.requests) == len(errors) - len(refused)
    unit = units(recorded.spans())["agent"]
    assert unit.attributes[semconv.GENOPS_UNIT_CALLS] == len(endpoint.requests)
    assert unit.attributes[semconv.GENOPS_UNIT_BLOCKED_CALLS] == len(refused)
    assert unit.attributes[COST] <= estimate * 1.9


# --- GENOPS_ENABLED=false -----------------------------------------------------------------------
def test_disabled_attribution_and_track_are_no_ops(monkeypatch, endpoint, h):
    from genops_instrumentation_openai import OpenAIInstrumentor

    monkeypatch.setenv("GENOPS_ENABLED", "false")
    instance = OpenAIInstrumentor()
    instance.instrument()  # patches nothing when disabled
    client = endpoint.client()
    ran: list[str] = []

    @track("decorated", max_cost=0.0)
    def decorated(value: int) -> int:
        ran.append("decorated")
        return value * 2

    @attribution(customer_id="acme")
    async def decorated_async() -> str:
        ran.append("async")
        return (await h.achat(endpoint.async_client())).id

    try:
        with capture(config.load()) as recorded:
            with attribution(customer_id="acme"), track("agent", max_cost=0.0) as block:
                response = h.chat(client)  # a zero cap would refuse every call: nothing here is enforced
                ran.append("block")
            assert decorated(21) == 42
            assert asyncio.run(decorated_async()).startswith("chatcmpl-")
            with pytest.raises(ValueError):
                with track("failing"):
                    raise ValueError("still raised")
            assert recorded.spans() == []
            assert semconv.METRIC_UNIT_COST not in recorded.metrics()
    finally:
        instance.uninstrument()
    assert isinstance(block, track)
    assert response.choices[0].message.content == "Hello! How can I help you today?"
    assert ran == ["block", "decorated", "async"] and len(endpoint.requests) == 2
