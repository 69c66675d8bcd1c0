"""``check(model)`` with the real OpenAI SDK, a real SQLite ledger file and the real OTel SDK:
it answers what the call would be told (model rules, budgets, a unit's cap) and reserves,
counts and sends nothing."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

import openai
import pytest

from genops_autoinstrument import PolicyViolation, attribution, check, config, semconv, track, track_cost
from genops_autoinstrument.api.testing import capture
from genops_autoinstrument.governance.decisions import Decision
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.governance.governor import Governor

BUDGET = "customer_id=0.00003/total"
ACME_BUCKET = "budget|customer_id|acme|total|total"
TABLES = ("buckets", "reservations", "rates", "alerts")


def ledger_rows(path: str) -> dict[str, list[tuple]]:
    """Everything the SQLite ledger file holds, table by table."""
    conn = sqlite3.connect(path)
    try:
        return {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in TABLES}
    finally:
        conn.close()


def fields(decision: Decision) -> tuple:
    budget = decision.budget
    return (decision.result, decision.policy_name, decision.reason_code, decision.mode, budget and (budget.name, budget.period, budget.allocated, budget.consumed))


# --- model rules ---------------------------------------------------------------------------------
def test_a_blocked_model_is_blocked_like_the_call_and_nothing_is_sent(governed, endpoint, h):
    client = endpoint.client()
    with governed(GENOPS_BLOCKED_MODELS="gpt-4o*") as (recorded, _):
        blocked = check("gpt-4o-mini")
        allowed = check("gpt-4.1-nano")
        anything = check()
        assert recorded.spans() == [] and endpoint.requests == [], "a check records and sends nothing"
        with pytest.raises(PolicyViolation) as caught:
            h.chat(client, "gpt-4o-mini")
    assert blocked.blocks and blocked.result == semconv.RESULT_BLOCKED
    assert blocked.reason_code == semconv.REASON_POLICY_DENY_MODEL and blocked.policy_name == "model_policy"
    assert "GENOPS_BLOCKED_MODELS" in blocked.explanation
    assert fields(blocked) == fields(caught.value.decision) and blocked.message == caught.value.decision.message
    assert allowed.result == semconv.RESULT_ALLOWED and not allowed.blocks
    assert anything.result == semconv.RESULT_ALLOWED, "without a model there is no model rule to break"
    assert endpoint.requests == []


def test_an_allow_list_blocks_other_models(governed):
    with governed(GENOPS_ALLOWED_MODELS="gpt-4o-mini,claude-*") as _:
        assert check("gpt-4o-mini").result == semconv.RESULT_ALLOWED
        assert check("claude-sonnet-4-5").result == semconv.RESULT_ALLOWED
        refused = check("gemini-2.5-pro")
        assert check().result == semconv.RESULT_ALLOWED
    assert refused.blocks and "not in GENOPS_ALLOWED_MODELS" in refused.message


def test_warn_mode_answers_a_warning_that_does_not_block(governed):
    with governed(GENOPS_BLOCKED_MODELS="gpt-4o*", GENOPS_MODEL_POLICY="warn") as _:
        decision = check("gpt-4o-mini")
    assert decision.result == semconv.RESULT_WARNING and decision.mode == "warn" and not decision.blocks


# --- budgets -------------------------------------------------------------------------------------
# USD 0.00003 per customer on gpt-4o-mini: a call ("Say hello", max_tokens=20) reserves about
# $0.0000125 and costs $0.0000048, so four calls fit and the fifth would overrun.
def test_check_predicts_each_call_and_reserves_nothing(governed, endpoint, h, ledger_path):
    client = endpoint.client()
    predictions, outcomes = [], []
    with governed(GENOPS_BUDGETS=BUDGET) as (recorded, governor), attribution(customer_id="acme"):
        for _ in range(6):
            before = ledger_rows(ledger_path) if outcomes else None
            sent = len(endpoint.requests)
            spans = len(recorded.spans())
            decision = check("gpt-4o-mini", max_output_tokens=20)
            assert check("gpt-4o-mini", max_output_tokens=20) == decision, "a check changes nothing"
            if before is not None:
                assert ledger_rows(ledger_path) == before
            assert len(endpoint.requests) == sent and len(recorded.spans()) == spans
            predictions.append(decision)
            try:
                h.chat(client)
            except openai.RateLimitError as error:
                outcomes.append(error)
            else:
                outcomes.append(None)
        figures = governor.ledger.figures(ACME_BUCKET, time.time())
    assert [d.blocks for d in predictions] == [o is not None for o in outcomes] == [False] * 4 + [True] * 2
    assert len(endpoint.requests) == 4
    allowed, refused = predictions[0], predictions[4]
    assert allowed.result == semconv.RESULT_ALLOWED and allowed.policy_name == BUDGET
    assert allowed.budget.allocated == pytest.approx(0.00003) and allowed.budget.remaining == pytest.approx(0.00003)
    assert fields(refused) == fields(outcomes[4].decision), "the same decision as the call's own"
    assert refused.reason_code == semconv.REASON_BUDGET_EXCEEDED and refused.budget.consumed == pytest.approx(4 * 0.0000048)
    assert figures.reserved == 0 and figures.spent == 4 * 4800


def test_the_estimate_is_judged_and_without_a_model_only_what_is_left(governed, ledger_path):
    with governed(GENOPS_BUDGETS=BUDGET) as (_, governor), attribution(customer_id="acme"):
        too_big = check("gpt-4o-mini")  # 1024 output tokens at $0.60/M: about $0.0006
        fits = check("gpt-4o-mini", provider="openai", max_output_tokens=20)
        assert check().result == semconv.RESULT_ALLOWED
        governor.charge({semconv.GENOPS_CUSTOMER_ID: "acme"}, 0.00003)
        used_up = check()
        with attribution(customer_id="globex"):
            other = check("gpt-4o-mini", max_output_tokens=20)
    assert too_big.blocks and too_big.reason_code == semconv.REASON_BUDGET_EXCEEDED
    assert "this call needs about $0.000614" in too_big.message, "priced as openai's gpt-4o-mini, inferred from its name"
    assert not fits.blocks
    assert used_up.blocks and used_up.budget.remaining == 0 and used_up.budget.consumed == pytest.approx(0.00003)
    assert other.result == semconv.RESULT_ALLOWED, "another customer has a budget of its own"


@pytest.mark.parametrize(("model", "needs"), [("claude-sonnet-4-5", "0.01536"), ("gemini-2.5-pro", "0.01024"), ("o3-mini", "0.0045056")])
def test_a_well_known_model_is_priced_as_its_makers(governed, model, needs):
    with governed(GENOPS_BUDGETS=BUDGET) as _, attribution(customer_id="acme"):
        decision = check(model)  # 1024 output tokens: far more than $0.00003
    assert decision.blocks and f"this call needs about ${needs}" in decision.message


def test_a_model_that_cannot_be_priced_guesses_nothing(governed, h):
    with governed(GENOPS_BUDGETS=BUDGET, GENOPS_UNPRICED_POLICY="allow") as (_, governor), attribution(customer_id="acme"):
        assert check(h.UNPRICED_MODEL, max_output_tokens=10**6).result == semconv.RESULT_ALLOWED
        assert check("gpt-4o-mini", provider="acme-cloud", max_output_tokens=10**6).result == semconv.RESULT_ALLOWED
        governor.charge({semconv.GENOPS_CUSTOMER_ID: "acme"}, 0.00003)
        exhausted = check(h.UNPRICED_MODEL)
    assert exhausted.blocks and exhausted.reason_code == semconv.REASON_BUDGET_EXCEEDED, "a used-up budget refuses any call"


def test_rate_limits_are_not_counted_by_a_check(governed, endpoint, h):
    client = endpoint.client()
    with governed(GENOPS_RATE_LIMITS="global=1/min") as _:
        assert all(check("gpt-4o-mini").result == semconv.RESULT_ALLOWED for _ in range(5))
        h.chat(client)  # the window's one call is still there
        with pytest.raises(openai.RateLimitError):
            h.chat(client)
    assert len(endpoint.requests) == 1


def test_a_ledger_that_cannot_be_read_follows_the_fail_mode(instrumentor, tmp_path):
    (tmp_path / "not-a-folder").write_text("")
    url = f"sqlite:///{tmp_path / 'not-a-folder' / 'ledger.db'}"
    answers = {}
    for mode in ("open", "closed"):
        settings = config.load({"GENOPS_LEDGER_URL": url, "GENOPS_BUDGETS": BUDGET, "GENOPS_FAIL_MODE": mode})
        governor = EnforcingGovernor(settings)
        with capture(settings, governor=governor):
            answers[mode] = check("gpt-4o-mini", max_output_tokens=20)
        assert governor.ledger_failures == 1
    assert answers["open"].result == semconv.RESULT_ALLOWED
    assert answers["closed"].blocks and answers["closed"].reason_code == semconv.REASON_BUDGET_RESERVATION_FAILED


# --- units of work -------------------------------------------------------------------------------
def test_check_inside_a_unit_reflects_its_cap(recorded, endpoint, h):
    client = endpoint.client()
    with track("agent", max_cost=0.0007):
        assert check("gpt-4o-mini").result == semconv.RESULT_ALLOWED  # about $0.000614 of $0.0007
        over = check("gpt-4o-mini", max_output_tokens=2000)
        assert check(h.UNPRICED_MODEL).result == semconv.RESULT_ALLOWED, "a cap cannot hold an unpriced call"
        with track("step"):  # an inner unit without a cap: the outer cap still holds
            track_cost(0.0001, kind="vector_query")
            nested = check("gpt-4o-mini")
        assert check().result == semconv.RESULT_ALLOWED, "$0.0001 of $0.0007 used: something is left"
        track_cost(0.0006, kind="gpu_seconds")
        used_up = check()
        with pytest.raises(openai.RateLimitError) as caught:
            h.chat(client)
    assert over.blocks and over.policy_name == "unit:agent" and over.reason_code == semconv.REASON_BUDGET_EXCEEDED
    assert over.budget.period == "unit" and over.budget.allocated == pytest.approx(0.0007)
    assert nested.blocks and nested.policy_name == "unit:agent" and nested.budget.consumed == pytest.approx(0.0001)
    assert used_up.blocks and used_up.budget.remaining == 0
    assert caught.value.decision.policy_name == used_up.policy_name == "unit:agent"
    assert endpoint.requests == []
    assert check().result == semconv.RESULT_ALLOWED, "outside the unit its cap is gone"


def test_a_governor_block_comes_before_the_cap(governed):
    with governed(GENOPS_BLOCKED_MODELS="gpt-4o*") as _, track("agent", max_cost=1.0):
        assert check("gpt-4o-mini").policy_name == "model_policy"


# --- safety --------------------------------------------------------------------------------------
def test_disabled_it_always_allows(governed, monkeypatch):
    monkeypatch.setenv("GENOPS_ENABLED", "false")
    with governed(GENOPS_BLOCKED_MODELS="*") as (recorded, _):
        decision = check("gpt-4o-mini")
        assert recorded.spans() == []
    assert decision.result == semconv.RESULT_ALLOWED and not decision.blocks


class _BrokenGovernor(Governor):
    active = True

    def check(self, request: Any, attribution: Any) -> Decision:
        raise RuntimeError("the governor broke")


def test_an_internal_error_allows_and_is_logged_once(instrumentor, caplog):
    with capture(config.load({}), governor=_BrokenGovernor()), caplog.at_level(logging.WARNING, "genops"):
        first, second = check("gpt-4o-mini"), check("gpt-4o-mini")
    assert first.result == second.result == semconv.RESULT_ALLOWED
    assert len([r for r in caplog.records if "internal error in check" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ((42,), TypeError),
        (("",), ValueError),
        ((None,), None),
        (("gpt-4o-mini", {"provider": 3}), TypeError),
        (("gpt-4o-mini", {"provider": ""}), ValueError),
        (("gpt-4o-mini", {"max_output_tokens": "100"}), TypeError),
        (("gpt-4o-mini", {"max_output_tokens": True}), TypeError),
        (("gpt-4o-mini", {"max_output_tokens": 0}), ValueError),
    ],
)
def test_arguments_are_checked(recorded, arguments, error):
    keywords = arguments[1] if len(arguments) > 1 else {}
    if error is None:
        assert check(arguments[0], **keywords).result == semconv.RESULT_ALLOWED
        return
    with pytest.raises(error):
        check(arguments[0], **keywords)
