"""Budgets through the real engine: reservation, reconciliation, modes, periods, alerts."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.budgets import ATTR_CHARGED, ATTR_CHARGED_BASIS, ATTR_ESTIMATE_STATUS
from genops_autoinstrument.governance.estimator import DEFAULT_OUTPUT_TOKENS
from genops_autoinstrument.governance.decisions import PolicyViolation
from genops_autoinstrument.governance.ledger.base import Figures
from genops_autoinstrument.governance.ledger.memory import MemoryLedger
from genops_autoinstrument.pricing.usage import Usage

DAY_KEY = "budget|team|search|day|2026-11-18"


def test_enforced_budget_blocks_the_call_that_would_overrun(governed, settings_from, call, span_events, clock):
    settings = settings_from(GENOPS_BUDGETS="team=0.01/day", GENOPS_TEAM="search")
    ledger = MemoryLedger()
    with governed(settings, ledger) as (rec, _):
        assert [call() for _ in range(4)] == [None] * 4  # 4 x $0.0021 = $0.0084
        blocked = call()
        spans = rec.spans()
        metrics = rec.metrics()
    assert isinstance(blocked, PolicyViolation)
    assert blocked.result == semconv.RESULT_BLOCKED
    assert blocked.reason_code == semconv.REASON_BUDGET_EXCEEDED
    assert blocked.policy_name == "team=0.01/day"
    assert blocked.budget.consumed == 0.0084
    assert blocked.budget.remaining == pytest.approx(0.0016)
    assert "$0.0084 spent" in str(blocked) and "team=search" in str(blocked)
    assert ledger.figures(DAY_KEY, clock()).spent == 8_400_000 and ledger.figures(DAY_KEY, clock()).reserved == 0

    first, last = spans[0], spans[-1]
    assert first.attributes[semconv.GENOPS_POLICY_RESULT] == "ALLOWED"
    assert semconv.GENOPS_POLICY_REASON_CODE not in first.attributes
    assert first.attributes[semconv.GENOPS_BUDGET_NAME] == "team=0.01/day"
    assert first.attributes[semconv.GENOPS_BUDGET_PERIOD] == "day"
    assert first.attributes[semconv.GENOPS_BUDGET_ALLOCATED] == 0.01
    assert first.attributes[semconv.GENOPS_BUDGET_CONSUMED] == 0.0
    assert first.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == 0.0021
    assert first.attributes[semconv.GENOPS_ACCOUNTING_ACTUAL] == 0.0021
    assert first.attributes[semconv.GENOPS_ACCOUNTING_UNIT] == "USD"
    assert [e.name for e in first.events] == [
        semconv.EVENT_POLICY_EVALUATED,
        semconv.EVENT_BUDGET_RESERVATION,
        semconv.EVENT_BUDGET_RECONCILIATION,
    ]
    assert all(span.start_time <= event.timestamp <= span.end_time for span in spans for event in span.events)
    assert spans[3].attributes[semconv.GENOPS_BUDGET_CONSUMED] == 0.0063

    assert last.attributes[semconv.GENOPS_POLICY_RESULT] == "BLOCKED"
    assert last.attributes[semconv.GENOPS_POLICY_REASON_CODE] == "BUDGET_EXCEEDED"
    assert last.attributes[semconv.GENOPS_POLICY_MODE] == "enforced"
    assert last.attributes[semconv.ERROR_TYPE] == "BUDGET_EXCEEDED"
    assert semconv.GENOPS_ACCOUNTING_RESERVED not in last.attributes
    assert span_events(last, semconv.EVENT_BUDGET_RESERVATION) == []
    assert span_events(last, semconv.EVENT_BUDGET_RECONCILIATION) == []
    assert span_events(last, semconv.EVENT_POLICY_EVALUATED) == [
        {
            semconv.GENOPS_POLICY_RESULT: "BLOCKED",
            semconv.GENOPS_POLICY_NAME: "team=0.01/day",
            semconv.GENOPS_POLICY_REASON_CODE: "BUDGET_EXCEEDED",
            semconv.GENOPS_POLICY_MODE: "enforced",
        }
    ]
    decisions = {point_attrs[semconv.GENOPS_POLICY_RESULT]: point.value for point_attrs, point in metrics[semconv.METRIC_POLICY_DECISIONS]}
    assert decisions == {"ALLOWED": 4, "BLOCKED": 1}


@pytest.mark.parametrize("mode", ["warn", "audit"])
def test_warn_and_audit_budgets_let_calls_through_and_say_so(governed, settings_from, call, caplog, mode, clock):
    settings = settings_from(GENOPS_BUDGETS=f"team=0.005/day:{mode}", GENOPS_TEAM="search")
    ledger = MemoryLedger()
    with caplog.at_level(logging.WARNING, logger="genops"), governed(settings, ledger) as (rec, _):
        assert [call() for _ in range(5)] == [None] * 5
        spans = rec.spans()
    assert ledger.figures(DAY_KEY, clock()).spent == 5 * 2_100_000  # everything that ran is counted
    results = [span.attributes[semconv.GENOPS_POLICY_RESULT] for span in spans]
    assert results == ["ALLOWED", "ALLOWED", "WARNING", "WARNING", "WARNING"]
    warned = spans[2].attributes
    assert warned[semconv.GENOPS_POLICY_REASON_CODE] == "BUDGET_EXCEEDED"
    assert warned[semconv.GENOPS_POLICY_MODE] == mode
    assert warned[semconv.GENOPS_ACCOUNTING_RESERVED] == 0.0021
    budget_lines = [r for r in caplog.records if "exceeded" in r.getMessage()]
    if mode == "warn":
        assert len(budget_lines) == 1  # throttled: one line per policy per minute
        assert "team=0.005/day" in budget_lines[0].getMessage()
    else:
        assert budget_lines == []


def test_actual_cost_replaces_the_estimate(governed, settings_from, call, span_events, clock):
    settings = settings_from(GENOPS_BUDGETS="team=1/day", GENOPS_TEAM="search")
    ledger = MemoryLedger()
    with governed(settings, ledger) as (rec, _):
        assert call(usage=Usage(input_tokens=50, output_tokens=100)) is None  # $0.00025
        (span,) = rec.spans()
    assert ledger.figures(DAY_KEY, clock()) == type(ledger.figures(DAY_KEY, clock()))(250_000, 0)
    assert span.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == 0.0021
    assert span.attributes[semconv.GENOPS_ACCOUNTING_ACTUAL] == 0.00025
    assert span.attributes[ATTR_CHARGED] == 0.00025
    assert span.attributes[ATTR_CHARGED_BASIS] == "actual"
    (reconciliation,) = span_events(span, semconv.EVENT_BUDGET_RECONCILIATION)
    assert reconciliation[semconv.GENOPS_ACCOUNTING_RESERVED] == 0.0021
    assert reconciliation[semconv.GENOPS_ACCOUNTING_ACTUAL] == 0.00025
    assert reconciliation[semconv.GENOPS_BUDGET_CONSUMED] == 0.00025
    (reservation,) = span_events(span, semconv.EVENT_BUDGET_RESERVATION)
    assert reservation[semconv.GENOPS_ACCOUNTING_RESERVED] == 0.0021
    assert reservation[ATTR_ESTIMATE_STATUS] == "priced"


def test_a_failed_call_releases_its_reservation_and_spends_nothing(governed, settings_from, call, span_events, clock):
    settings = settings_from(GENOPS_BUDGETS="team=1/day", GENOPS_TEAM="search")
    ledger = MemoryLedger()
    with governed(settings, ledger) as (rec, _):
        assert call(fail=ConnectionError("provider down")) is None
        (span,) = rec.spans()
    assert ledger.figures(DAY_KEY, clock()).spent == 0
    assert ledger.figures(DAY_KEY, clock()).reserved == 0
    assert span_events(span, semconv.EVENT_BUDGET_RECONCILIATION) == []
    assert semconv.GENOPS_ACCOUNTING_ACTUAL not in span.attributes


def test_unpriced_model_reserves_nothing_never_blocks_on_a_guess_and_is_not_reported_as_a_number(governed, settings_from, call, make_request, clock):
    settings = settings_from(GENOPS_BUDGETS="team=0.000001/day", GENOPS_TEAM="search", GENOPS_UNPRICED_POLICY="allow")
    ledger = MemoryLedger()
    with governed(settings, ledger) as (rec, _):
        assert call(make_request(model="test-unpriced")) is None
        (span,) = rec.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == "ALLOWED"
    assert span.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == 0.0
    assert span.attributes[ATTR_ESTIMATE_STATUS] == "unpriced"
    assert span.attributes[ATTR_CHARGED] == 0.0
    assert span.attributes[ATTR_CHARGED_BASIS] == "estimate"
    assert semconv.GENOPS_ACCOUNTING_ACTUAL not in span.attributes
    assert span.attributes[semconv.GENOPS_COST_STATUS] == "unpriced"


def test_an_exhausted_budget_blocks_even_unpriced_calls(governed, settings_from, call, make_request):
    settings = settings_from(GENOPS_BUDGETS="team=0.0042/day", GENOPS_TEAM="search")
    with governed(settings) as (rec, _):
        assert call() is None and call() is None  # exactly 0.0042: used up
        blocked = call(make_request(model="test-unpriced"))
    assert isinstance(blocked, PolicyViolation) and blocked.reason_code == "BUDGET_EXCEEDED"
    assert blocked.budget.remaining == 0.0


def test_unpriced_actual_counts_the_estimate(governed, settings_from, call, clock):
    settings = settings_from(GENOPS_BUDGETS="team=1/day", GENOPS_TEAM="search")
    ledger = MemoryLedger()
    with governed(settings, ledger) as (rec, _):
        assert call(usage=None) is None  # the provider reported no usage
        (span,) = rec.spans()
    assert ledger.figures(DAY_KEY, clock()).spent == 2_100_000
    assert span.attributes[ATTR_CHARGED] == 0.0021
    assert span.attributes[ATTR_CHARGED_BASIS] == "estimate"
    assert semconv.GENOPS_ACCOUNTING_ACTUAL not in span.attributes


def test_estimate_uses_the_default_output_tokens_when_the_request_sets_none(governed, settings_from, call, make_request):
    settings = settings_from(GENOPS_BUDGETS="global=1/day")
    with governed(settings) as (rec, _):
        call(make_request(prompt="y" * 401, max_output_tokens=None))
        (span,) = rec.spans()
    # ceil(401 / 4) = 101 input tokens at $1/M + 1024 output tokens at $2/M
    assert DEFAULT_OUTPUT_TOKENS == 1024
    assert span.attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == pytest.approx((101 * 1 + 1024 * 2) / 1e6, abs=1e-12)


def test_calls_without_the_scope_key_share_the_none_bucket(governed, settings_from, call, clock):
    ledger = MemoryLedger()
    with governed(settings_from(GENOPS_BUDGETS="customer_id=0.003/day"), ledger) as (rec, _):
        assert call() is None
        assert isinstance(call(), PolicyViolation)
    with governed(settings_from(GENOPS_BUDGETS="customer_id=0.003/day", GENOPS_CUSTOMER_ID="acme"), ledger) as (rec, _):
        assert call() is None  # acme has its own bucket
    assert ledger.figures("budget|customer_id|(none)|day|2026-11-18", clock()).spent == 2_100_000
    assert ledger.figures("budget|customer_id|acme|day|2026-11-18", clock()).spent == 2_100_000


def test_first_blocking_budget_wins_and_nothing_is_reserved_anywhere(governed, settings_from, call, clock):
    settings = settings_from(GENOPS_BUDGETS="global=1/month;team=0.002/day;project=0.001/day:warn", GENOPS_TEAM="search")
    ledger = MemoryLedger()
    with governed(settings, ledger) as (rec, _):
        blocked = call()
    assert blocked.policy_name == "team=0.002/day"
    assert ledger.figures("budget|global|*|month|2026-11", clock()).reserved == 0
    assert ledger.figures("budget|global|*|month|2026-11", clock()).spent == 0


def test_warnings_from_several_budgets_accumulate(governed, settings_from, call):
    settings = settings_from(GENOPS_BUDGETS="team=0.001/day:warn;global=0.001/day:audit;project=5/day", GENOPS_TEAM="search")
    with governed(settings) as (rec, governor):
        assert call() is None
        (span,) = rec.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == "WARNING"
    assert span.attributes[semconv.GENOPS_POLICY_NAME] == "team=0.001/day"
    assert span.attributes[semconv.GENOPS_POLICY_MODE] == "warn"
    evaluated = [e for e in span.events if e.name == semconv.EVENT_POLICY_EVALUATED]
    assert [(e.attributes[semconv.GENOPS_POLICY_NAME], e.attributes[semconv.GENOPS_POLICY_RESULT]) for e in evaluated] == [
        ("team=0.001/day", "WARNING"),
        ("global=0.001/day", "WARNING"),
        ("project=5/day", "ALLOWED"),
    ]
    assert evaluated[1].attributes[semconv.GENOPS_POLICY_MODE] == "audit"


def test_day_budget_rolls_over_at_utc_midnight(governed, settings_from, call, clock):
    settings = settings_from(GENOPS_BUDGETS="team=0.003/day", GENOPS_TEAM="search")
    with governed(settings) as (rec, _):
        assert call() is None
        assert isinstance(call(), PolicyViolation)
        clock.now = 1_795_046_399.0  # 2026-11-18T23:59:59Z: still the same day
        assert isinstance(call(), PolicyViolation)
        clock.advance(1)  # 2026-11-19T00:00:00Z
        assert call() is None
        spans = rec.spans()
    assert spans[-1].attributes[semconv.GENOPS_BUDGET_CONSUMED] == 0.0


@pytest.mark.parametrize(
    "period, boundary",
    [
        ("hour", 1_795_003_200.0),  # 2026-11-18T12:00:00Z
        ("week", 1_795_392_000.0),  # Monday 2026-11-23T00:00:00Z
        ("month", 1_796_083_200.0),  # 2026-12-01T00:00:00Z
    ],
)
def test_other_periods_roll_over_at_their_boundary(governed, settings_from, call, clock, period, boundary):
    settings = settings_from(GENOPS_BUDGETS=f"team=0.003/{period}", GENOPS_TEAM="search")
    with governed(settings) as (rec, _):
        assert call() is None
        clock.now = boundary - 1
        assert isinstance(call(), PolicyViolation)
        clock.now = boundary
        assert call() is None


def test_total_budget_never_rolls_over(governed, settings_from, call, clock):
    with governed(settings_from(GENOPS_BUDGETS="team=0.003/total", GENOPS_TEAM="search")) as (rec, _):
        assert call() is None
        clock.advance(400 * 86400)
        assert isinstance(call(), PolicyViolation)


def test_alert_fires_once_per_period_at_the_threshold(governed, settings_from, call, span_events, clock, caplog):
    settings = settings_from(GENOPS_BUDGETS="team=0.01/day", GENOPS_TEAM="search", GENOPS_BUDGET_ALERT_THRESHOLD="0.5")
    with caplog.at_level(logging.WARNING, logger="genops"), governed(settings) as (rec, _):
        for _ in range(4):
            call()  # spent after each: 0.0021, 0.0042, 0.0063 (crosses 0.005), 0.0084
        clock.advance(86400)
        for _ in range(3):
            call()
        spans = rec.spans()
    alerts = [span_events(span, semconv.EVENT_BUDGET_ALERT) for span in spans]
    assert [len(a) for a in alerts] == [0, 0, 1, 0, 0, 0, 1]
    assert alerts[2][0] == {
        semconv.GENOPS_BUDGET_NAME: "team=0.01/day",
        semconv.GENOPS_BUDGET_PERIOD: "day",
        semconv.GENOPS_BUDGET_ALLOCATED: 0.01,
        semconv.GENOPS_BUDGET_CONSUMED: 0.0063,
        "genops.budget.threshold": 0.5,
    }
    assert len([r for r in caplog.records if "has used 63%" in r.getMessage()]) == 2


def test_a_process_asks_the_ledger_about_an_alert_once_per_period(governed, settings_from, call, clock, any_ledger, monkeypatch):
    """Past the threshold every settlement would otherwise cost a round trip to a fleet's ledger."""
    asked: list[str] = []
    first_alert = any_ledger.first_alert

    def counted(key, expires_at, now):
        asked.append(key)
        return first_alert(key, expires_at, now)

    monkeypatch.setattr(any_ledger, "first_alert", counted)
    settings = settings_from(GENOPS_BUDGETS="team=1/day", GENOPS_TEAM="search", GENOPS_BUDGET_ALERT_THRESHOLD="0.001")
    with governed(settings, any_ledger):
        for _ in range(5):
            call()  # each past the threshold
        clock.advance(86400)
        for _ in range(3):
            call()
    assert len(asked) == 2 and asked[0] != asked[1], asked  # once for each day's bucket


def test_decisions_are_immutable(governed, settings_from, call):
    with governed(settings_from(GENOPS_BUDGETS="team=0.001/day", GENOPS_TEAM="search")) as (rec, _):
        blocked = call()
    with pytest.raises(dataclasses.FrozenInstanceError):
        blocked.decision.result = "ALLOWED"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        blocked.budget.remaining = 5.0  # type: ignore[misc]


def test_the_whole_budget_story_on_every_real_ledger(governed, settings_from, call, span_events, clock, any_ledger):
    settings = settings_from(GENOPS_BUDGETS="team=0.005/day;global=1/total", GENOPS_TEAM="search", GENOPS_BUDGET_ALERT_THRESHOLD="0.8")
    with governed(settings, any_ledger) as (rec, _):
        # 0.0021, then 0.0007 actual (reserved 0.0021), then 0.0021: 0.0049 of 0.005, alert at >= 0.004
        outcomes = [call(), call(usage=Usage(input_tokens=100, output_tokens=300)), call(), call()]
        clock.advance(86400)
        outcomes += [call(), call()]
        spans = rec.spans()
    assert outcomes[:3] == [None, None, None] and outcomes[4:] == [None, None]
    assert outcomes[3].reason_code == "BUDGET_EXCEEDED" and outcomes[3].budget.consumed == 0.0049
    assert [len(span_events(s, semconv.EVENT_BUDGET_ALERT)) for s in spans] == [0, 0, 1, 0, 0, 1]  # once per day
    assert any_ledger.figures(DAY_KEY, clock() - 86400).spent == 4_900_000
    assert any_ledger.figures("budget|team|search|day|2026-11-19", clock()).spent == 4_200_000
    assert any_ledger.figures("budget|global|*|total|total", clock()) == Figures(9_100_000, 0)
    with governed(settings, any_ledger) as (rec, _):  # a restarted process sees the same state
        blocked = call()
    assert isinstance(blocked, PolicyViolation) and blocked.budget.consumed == 0.0042


def test_with_the_real_price_list(settings_from, clock):
    """No stand-in pricer: the estimate and the actual cost come from genops_autoinstrument.pricing.prices."""
    from genops_autoinstrument.governance.enforcing import EnforcingGovernor
    from genops_autoinstrument.pricing.prices import price_call
    from genops_autoinstrument.engine.call import CallRequest
    from genops_autoinstrument.engine.runtime import begin_call
    from genops_autoinstrument.api.testing import capture

    settings = settings_from(GENOPS_BUDGETS="team=0.00002/day", GENOPS_TEAM="search")
    estimate = price_call("openai", "gpt-4o-mini", Usage(input_tokens=3, output_tokens=20)).total  # "Say hello": 9 chars -> 3 tokens
    actual = price_call("openai", "gpt-4o-mini", Usage(input_tokens=12, output_tokens=5)).total
    assert estimate and actual
    from opentelemetry.sdk.metrics import MeterProvider

    governor = EnforcingGovernor(settings, ledger=MemoryLedger(), clock=clock, meter=MeterProvider().get_meter("t"))
    request = CallRequest("openai", "chat", "gpt-4o-mini", max_output_tokens=20, prompt_text=lambda: ["Say hello"])
    outcomes = []
    with capture(settings, governor=governor) as rec:
        for _ in range(3):
            try:
                recorded = begin_call(request)
            except PolicyViolation as violation:
                outcomes.append(violation)
                continue
            with recorded:
                pass
            recorded.finish(response_model="gpt-4o-mini-2024-07-18", usage=Usage(input_tokens=12, output_tokens=5))
            outcomes.append(None)
        spans = rec.spans()
    assert spans[0].attributes[semconv.GENOPS_ACCOUNTING_RESERVED] == pytest.approx(estimate, abs=1e-12)
    assert spans[0].attributes[semconv.GENOPS_ACCOUNTING_ACTUAL] == spans[0].attributes[semconv.GENOPS_COST_TOTAL] == actual
    expected_allowed = 2 if 2 * actual + estimate > 0.00002 else 3
    assert outcomes.count(None) == expected_allowed
    if expected_allowed == 2:
        assert outcomes[2].budget.consumed == pytest.approx(2 * actual, abs=1e-12)
        assert "$0.0000" in str(outcomes[2]) and "e-0" not in str(outcomes[2])
