"""``track_cost`` and ``record_eval`` with the real OpenAI SDK, the real OTel SDK in memory and a
real SQLite ledger file: the cost metric and its kind, units' totals, budgets; evaluation events
on the model call or unit and the score histogram."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import openai
import pytest

from genops_autoinstrument import attribution, config, record_eval, semconv, track, track_cost
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.governance.governor import Governor

CUSTOMER = semconv.GENOPS_CUSTOMER_ID
CALL_COST = 12 * 0.15e-6 + 5 * 0.60e-6  # the endpoint's usage on gpt-4o-mini: $0.0000048
BUDGET = "customer_id=0.001/total"


def points(recorded: Any, metric: str, **dims: Any) -> list[tuple[dict, Any]]:
    """The data points of ``metric`` whose dimensions include ``dims`` (keys by attribute name)."""
    return [(d, p) for d, p in recorded.metrics().get(metric, []) if all(d.get(k) == v for k, v in dims.items())]


def events(span: Any, name: str) -> list[dict]:
    return [dict(event.attributes) for event in span.events if event.name == name]


def by_name(spans: list[Any], name: str) -> Any:
    (span,) = [s for s in spans if s.name == name]
    return span


def bucket(customer: str) -> str:
    return f"budget|customer_id|{customer}|total|total"


# --- track_cost ----------------------------------------------------------------------------------
def test_track_cost_adds_to_the_cost_metric_with_its_kind_and_attribution(recorded, endpoint, h):
    with attribution(customer_id="acme", feature="search"):
        h.chat(endpoint.client())
        track_cost(0.002, kind="vector_query")
        track_cost(0.003, kind="vector_query")
        track_cost(0.5, kind="gpu_seconds", customer_id="globex")
    track_cost(0.25, kind="image")
    vector = points(recorded, semconv.METRIC_COST, **{semconv.GENOPS_COST_KIND: "vector_query"})
    gpu = points(recorded, semconv.METRIC_COST, **{semconv.GENOPS_COST_KIND: "gpu_seconds"})
    image = points(recorded, semconv.METRIC_COST, **{semconv.GENOPS_COST_KIND: "image"})
    assert [(d[CUSTOMER], d[semconv.GENOPS_FEATURE], p.value) for d, p in vector] == [("acme", "search", pytest.approx(0.005))]
    assert [(d[CUSTOMER], d[semconv.GENOPS_FEATURE], p.value) for d, p in gpu] == [("globex", "search", 0.5)], "keywords override"
    assert [(CUSTOMER in d, p.value) for d, p in image] == [(False, 0.25)]
    model = [p.value for d, p in points(recorded, semconv.METRIC_COST, **{CUSTOMER: "acme"}) if semconv.GENOPS_COST_KIND not in d]
    assert model == [pytest.approx(CALL_COST)], "the model call's own cost point has no kind"


def test_track_cost_adds_to_the_enclosing_units(recorded, endpoint, h):
    client = endpoint.client()
    with track("rag-query", customer_id="acme"):
        h.chat(client)
        with track("retrieve"):
            track_cost(0.001, kind="vector_query")
        h.chat(client)
    spans = recorded.spans()
    outer, inner = by_name(spans, "rag-query"), by_name(spans, "retrieve")
    assert outer.attributes[semconv.GENOPS_COST_TOTAL] == pytest.approx(2 * CALL_COST + 0.001)
    assert outer.attributes[semconv.GENOPS_UNIT_CALLS] == 2
    assert inner.attributes[semconv.GENOPS_COST_TOTAL] == pytest.approx(0.001) and inner.attributes[semconv.GENOPS_UNIT_CALLS] == 0
    assert events(inner, semconv.EVENT_COST) == [{semconv.GENOPS_COST_KIND: "vector_query", semconv.GENOPS_COST_TOTAL: 0.001, semconv.GENOPS_COST_CURRENCY: "USD"}]
    unit_costs = {d[semconv.GENOPS_UNIT_NAME]: p.value for d, p in points(recorded, semconv.METRIC_UNIT_COST)}
    assert unit_costs == {"rag-query": pytest.approx(2 * CALL_COST + 0.001), "retrieve": pytest.approx(0.001)}


def test_track_cost_counts_against_a_unit_cap(recorded, endpoint, h):
    with track("agent", max_cost=0.001):
        h.chat(endpoint.client())
        track_cost(0.001, kind="gpu_seconds")
        with pytest.raises(openai.RateLimitError) as caught:
            h.chat(endpoint.client())
    assert caught.value.decision.policy_name == "unit:agent"
    assert len(endpoint.requests) == 1


def test_track_cost_spends_the_budget_and_a_later_call_is_refused(governed, endpoint, h):
    client = endpoint.client()
    with governed(GENOPS_BUDGETS=BUDGET) as (recorded, governor), attribution(customer_id="acme"):
        with track("job"):
            h.chat(client)
            track_cost(0.0002, kind="vector_query", customer_id="globex")  # another customer's budget
            track_cost(0.001, kind="gpu_seconds")
            with pytest.raises(openai.RateLimitError) as caught:
                h.chat(client)
        now = time.time()
        acme, globex = governor.ledger.figures(bucket("acme"), now), governor.ledger.figures(bucket("globex"), now)
        job = by_name(recorded.spans(), "job")
    assert len(endpoint.requests) == 1
    assert caught.value.reason_code == semconv.REASON_BUDGET_EXCEEDED and caught.value.policy_name == BUDGET
    assert (acme.spent, acme.reserved) == (4800 + 1_000_000, 0)
    assert (globex.spent, globex.reserved) == (200_000, 0)
    gpu = [e for e in events(job, semconv.EVENT_COST) if e[semconv.GENOPS_COST_KIND] == "gpu_seconds"]
    assert gpu == [
        {
            semconv.GENOPS_COST_KIND: "gpu_seconds",
            semconv.GENOPS_COST_TOTAL: 0.001,
            semconv.GENOPS_COST_CURRENCY: "USD",
            semconv.GENOPS_ACCOUNTING_CHARGED: 0.001,
            semconv.GENOPS_ACCOUNTING_CHARGED_BASIS: "actual",
            semconv.GENOPS_ACCOUNTING_UNIT: "USD",
            semconv.GENOPS_ACCOUNTING_ACTUAL: 0.001,
        }
    ]
    reconciliations = events(job, semconv.EVENT_BUDGET_RECONCILIATION)
    assert reconciliations[-1][semconv.GENOPS_BUDGET_CONSUMED] == pytest.approx(0.0010048)
    assert reconciliations[-1][semconv.GENOPS_ACCOUNTING_RESERVED] == 0
    (alert,) = events(job, semconv.EVENT_BUDGET_ALERT)
    assert alert[semconv.GENOPS_BUDGET_NAME] == BUDGET and alert[semconv.GENOPS_BUDGET_CONSUMED] == pytest.approx(0.0010048)


def test_a_ledger_failure_on_a_charge_follows_the_fail_mode(instrumentor, tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    settings = config.load({"GENOPS_LEDGER_URL": f"sqlite:///{tmp_path / 'not-a-folder' / 'ledger.db'}", "GENOPS_BUDGETS": BUDGET, "GENOPS_FAIL_MODE": "closed"})
    governor = EnforcingGovernor(settings)
    with capture(settings, governor=governor) as recorded:
        assert track_cost(0.001, kind="gpu_seconds") is None
        recorded_cost = points(recorded, semconv.METRIC_COST, **{semconv.GENOPS_COST_KIND: "gpu_seconds"})
    assert governor.ledger_failures == 1
    assert [p.value for _, p in recorded_cost] == [0.001], "the metric is recorded all the same"


# --- record_eval ---------------------------------------------------------------------------------
def test_record_eval_on_the_current_model_call(recorded, endpoint, h):
    results = []

    def score_response(response: httpx.Response) -> None:  # runs inside the SDK call, its span current
        results.append(record_eval("guardrail_confidence", 0.93, threshold=0.9))

    http = httpx.Client(transport=httpx.MockTransport(endpoint.handler), event_hooks={"response": [score_response]})
    client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=http)
    with attribution(customer_id="acme"):
        h.chat(client)
    (span,) = recorded.spans()
    assert results == ["pass"]
    assert span.name == "chat gpt-4o-mini"
    assert events(span, semconv.EVENT_EVAL) == [
        {semconv.GENOPS_EVAL_METRIC: "guardrail_confidence", semconv.GENOPS_EVAL_SCORE: 0.93, semconv.GENOPS_EVAL_THRESHOLD: 0.9, semconv.GENOPS_EVAL_RESULT: "pass"}
    ]
    ((dims, point),) = points(recorded, semconv.METRIC_EVAL_SCORE)
    assert dims == {semconv.GENOPS_EVAL_METRIC: "guardrail_confidence", semconv.GENOPS_EVAL_RESULT: "pass", CUSTOMER: "acme", semconv.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"}
    assert (point.count, point.sum) == (1, pytest.approx(0.93))


def test_record_eval_on_the_unit_after_its_calls(recorded, endpoint, h):
    with track("rag-query", customer_id="acme", feature="search"):
        h.chat(endpoint.client())
        failed = record_eval("faithfulness", 0.42, threshold=0.7)
        plain = record_eval("answer_length", 17)
    unit = by_name(recorded.spans(), "rag-query")
    assert (failed, plain) == ("fail", None)
    assert events(unit, semconv.EVENT_EVAL) == [
        {semconv.GENOPS_EVAL_METRIC: "faithfulness", semconv.GENOPS_EVAL_SCORE: 0.42, semconv.GENOPS_EVAL_THRESHOLD: 0.7, semconv.GENOPS_EVAL_RESULT: "fail"},
        {semconv.GENOPS_EVAL_METRIC: "answer_length", semconv.GENOPS_EVAL_SCORE: 17.0},
    ]
    scores = {d[semconv.GENOPS_EVAL_METRIC]: (d, p) for d, p in points(recorded, semconv.METRIC_EVAL_SCORE)}
    faithfulness, length = scores["faithfulness"], scores["answer_length"]
    assert faithfulness[0] == {
        semconv.GENOPS_EVAL_METRIC: "faithfulness",
        semconv.GENOPS_EVAL_RESULT: "fail",
        CUSTOMER: "acme",
        semconv.GENOPS_FEATURE: "search",
        semconv.GENOPS_UNIT_NAME: "rag-query",
    }
    assert faithfulness[1].sum == pytest.approx(0.42)
    assert semconv.GENOPS_EVAL_RESULT not in length[0] and length[1].sum == 17


def test_record_eval_outside_any_span_records_the_metric(recorded):
    assert record_eval("relevance", 0.8, threshold=0.8) == "pass"
    assert recorded.spans() == []
    ((dims, point),) = points(recorded, semconv.METRIC_EVAL_SCORE)
    assert dims == {semconv.GENOPS_EVAL_METRIC: "relevance", semconv.GENOPS_EVAL_RESULT: "pass"} and point.sum == pytest.approx(0.8)


# --- safety --------------------------------------------------------------------------------------
def test_disabled_they_record_nothing_and_record_eval_still_answers(governed, endpoint, h, monkeypatch, tmp_path):
    monkeypatch.setenv("GENOPS_ENABLED", "false")
    with governed(GENOPS_BUDGETS=BUDGET) as (recorded, governor), attribution(customer_id="acme"):
        assert track_cost(5.0, kind="gpu_seconds") is None
        assert record_eval("faithfulness", 0.9, threshold=0.7) == "pass"
        assert record_eval("faithfulness", 0.1, threshold=0.7) == "fail"
        assert record_eval("faithfulness", 0.1) is None
        metrics = recorded.metrics()
    assert semconv.METRIC_EVAL_SCORE not in metrics and semconv.METRIC_COST not in metrics
    assert not (tmp_path / "ledger.db").exists(), "no budget was charged"


class _BrokenGovernor(Governor):
    active = True

    def charge(self, attribution: Any, usd: float) -> Any:
        raise RuntimeError("the ledger broke")


def test_an_internal_error_never_reaches_the_application(instrumentor, caplog):
    with capture(config.load({}), governor=_BrokenGovernor()), caplog.at_level(logging.WARNING, "genops"):
        assert track_cost(0.01, kind="gpu_seconds") is None
        assert track_cost(0.01, kind="gpu_seconds") is None
    assert len([r for r in caplog.records if "internal error in track_cost" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: track_cost(-0.01, kind="gpu_seconds"), ValueError),
        (lambda: track_cost(float("nan"), kind="gpu_seconds"), ValueError),
        (lambda: track_cost("0.01", kind="gpu_seconds"), TypeError),
        (lambda: track_cost(True, kind="gpu_seconds"), TypeError),
        (lambda: track_cost(0.01, kind=""), ValueError),
        (lambda: track_cost(0.01, kind=None), TypeError),
        (lambda: track_cost(0.01, kind="gpu_seconds", customer="acme"), TypeError),
        (lambda: record_eval("", 0.5), ValueError),
        (lambda: record_eval(None, 0.5), TypeError),
        (lambda: record_eval("faithfulness", "high"), TypeError),
        (lambda: record_eval("faithfulness", float("inf")), ValueError),
        (lambda: record_eval("faithfulness", 0.5, threshold="0.7"), TypeError),
    ],
)
def test_arguments_are_checked(recorded, call, error):
    with pytest.raises(error):
        call()
    assert points(recorded, semconv.METRIC_EVAL_SCORE) == [] and points(recorded, semconv.METRIC_COST) == [], "nothing is recorded"
