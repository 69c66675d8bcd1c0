"""Model, content and rate policies in each mode, and the order in which policies decide."""

from __future__ import annotations

import logging

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.content_rules import luhn_valid, scan
from genops_autoinstrument.governance.decisions import PolicyViolation
from genops_autoinstrument.governance.ledger.memory import MemoryLedger


# --- model policy --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "env, model, denied",
    [
        ({"GENOPS_ALLOWED_MODELS": "gpt-4o-mini*,test-*"}, "test-model", False),
        ({"GENOPS_ALLOWED_MODELS": "gpt-4o-mini*"}, "test-model", True),
        ({"GENOPS_ALLOWED_MODELS": "GPT-4O*"}, "gpt-4o-2024-08-06", False),  # case-insensitive globs
        ({"GENOPS_BLOCKED_MODELS": "o1*,test-m?del"}, "test-model", True),
        ({"GENOPS_BLOCKED_MODELS": "o1*"}, "test-model", False),
        ({"GENOPS_ALLOWED_MODELS": "test-*", "GENOPS_BLOCKED_MODELS": "test-model"}, "test-model", True),  # block wins
        ({"GENOPS_ALLOWED_MODELS": "test-*"}, None, True),  # an unknown model is not on the allow-list
    ],
)
def test_model_globs(governed, settings_from, call, make_request, env, model, denied):
    with governed(settings_from(**env)) as (rec, _):
        outcome = call(make_request(model=model))
        (span,) = rec.spans()
    if denied:
        assert isinstance(outcome, PolicyViolation)
        assert outcome.reason_code == semconv.REASON_POLICY_DENY_MODEL
        assert outcome.policy_name == "model_policy"
        assert span.attributes[semconv.GENOPS_POLICY_RESULT] == "BLOCKED"
        assert span.attributes[semconv.GENOPS_POLICY_REASON_CODE] == "POLICY_DENY_MODEL"
    else:
        assert outcome is None
        assert span.attributes[semconv.GENOPS_POLICY_RESULT] == "ALLOWED"
        assert semconv.GENOPS_POLICY_REASON_CODE not in span.attributes


@pytest.mark.parametrize("mode", ["warn", "audit"])
def test_model_policy_warn_and_audit_let_the_call_run(governed, settings_from, call, caplog, mode):
    settings = settings_from(GENOPS_BLOCKED_MODELS="test-*", GENOPS_MODEL_POLICY=mode)
    with caplog.at_level(logging.WARNING, logger="genops"), governed(settings) as (rec, _):
        assert call() is None
        (span,) = rec.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == "WARNING"
    assert span.attributes[semconv.GENOPS_POLICY_MODE] == mode
    assert span.attributes[semconv.GENOPS_POLICY_REASON_CODE] == "POLICY_DENY_MODEL"
    assert semconv.GENOPS_COST_TOTAL in span.attributes  # it ran and was priced
    lines = [r.getMessage() for r in caplog.records if "model policy" in r.getMessage()]
    assert lines == (["GenOps model policy: model 'test-model' matches GENOPS_BLOCKED_MODELS (warn mode: the call goes ahead)"] if mode == "warn" else [])


# --- content policy ------------------------------------------------------------------------------------
SAMPLES = {
    "email": "please reply to jane.doe+ops@example.co.uk today",
    "phone": "my number is (415) 555-0123",
    "payment_card": "card 4111-1111-1111-1111 exp 12/29",
    "us_ssn": "ssn 123-45-6789",
    "secret": "use key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
}


@pytest.mark.parametrize("kind, text", sorted(SAMPLES.items()))
def test_each_kind_is_found(kind, text):
    assert scan([text]) == (kind,)


@pytest.mark.parametrize(
    "text",
    [
        "the meeting is on 2026-11-18 at 10:30, room 4",
        "order 12345678 shipped; version 1.2.3; pi is 3.14159265358979",
        "card-like but fails Luhn 4111 1111 1111 1112",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "sk-short is not a key; @mention is not an email",
        "ssn-like but invalid 000-12-3456 and 666-12-3456",
        "years 2024 2025 2026 2027 2028 are not a card",
    ],
)
def test_ordinary_text_is_clean(text):
    assert scan([text]) == ()


def test_more_secret_shapes_and_luhn():
    for secret in ("AKIAIOSFODNN7EXAMPLE", "ghp_" + "A1b2" * 9, "xoxb-123456789012-abcdefABCDEF", "AIza" + "x" * 35, "-----BEGIN RSA PRIVATE KEY-----", "sk-ant-api03-" + "z" * 30):
        assert scan([f"config: {secret}"]) == ("secret",), secret
    assert luhn_valid("4539578763621486") and not luhn_valid("4539578763621487")
    for card in ("4111111111111111", "3782 822463 10005", "6011-0009-9013-9424"):
        assert scan([f"pay with {card}"]) == ("payment_card",), card
    assert scan(["a@b.io", "SSN 078-05-1120"]) == ("email", "us_ssn")


def test_content_block_names_kinds_and_never_the_text(governed, settings_from, call, make_request, caplog):
    prompt = SAMPLES["email"] + " and " + SAMPLES["payment_card"]
    with caplog.at_level(logging.DEBUG, logger="genops"), governed(settings_from(GENOPS_CONTENT_POLICY="block")) as (rec, _):
        blocked = call(make_request(prompt=prompt))
        (span,) = rec.spans()
    assert isinstance(blocked, PolicyViolation)
    assert blocked.reason_code == semconv.REASON_POLICY_DENY_CONTENT
    assert str(blocked) == "GenOps content policy: the prompt contains email, payment_card"
    assert blocked.decision.extra["kinds"] == ("email", "payment_card")
    everything = repr(dict(span.attributes)) + repr([dict(e.attributes) for e in span.events]) + caplog.text + str(blocked)
    for secret in ("jane.doe", "4111", "example.co.uk"):
        assert secret not in everything


def test_content_warn_lets_the_call_run_and_clean_prompts_pass(governed, settings_from, call, make_request):
    with governed(settings_from(GENOPS_CONTENT_POLICY="warn")) as (rec, _):
        assert call(make_request(prompt=SAMPLES["us_ssn"])) is None
        assert call(make_request(prompt="what is the capital of France?")) is None
        warned, clean = rec.spans()
    assert warned.attributes[semconv.GENOPS_POLICY_RESULT] == "WARNING"
    assert warned.attributes[semconv.GENOPS_POLICY_REASON_CODE] == "POLICY_DENY_CONTENT"
    assert warned.attributes[semconv.GENOPS_POLICY_MODE] == "warn"
    assert clean.attributes[semconv.GENOPS_POLICY_RESULT] == "ALLOWED"


# --- rate limits ---------------------------------------------------------------------------------------
def test_rate_limit_blocks_then_the_window_slides(governed, settings_from, call, clock):
    settings = settings_from(GENOPS_RATE_LIMITS="team=3/min", GENOPS_TEAM="search")
    with governed(settings) as (rec, _):
        clock.now = 1_795_000_020.0  # 2026-11-18T11:07:00Z, the start of a minute window
        assert [call() for _ in range(3)] == [None] * 3
        limited = call()
        clock.advance(59)  # same window: still limited
        assert isinstance(call(), PolicyViolation)
        clock.advance(1)  # next window, the previous one still weighs 3 * 60/60 -> limited
        assert isinstance(call(), PolicyViolation)
        clock.advance(30)  # halfway: previous weighs 1.5, room for one call
        assert call() is None
        assert isinstance(call(), PolicyViolation)
        spans = rec.spans()
    assert isinstance(limited, PolicyViolation)
    assert limited.result == semconv.RESULT_RATE_LIMITED
    assert limited.reason_code == semconv.REASON_RATE_LIMITED
    assert limited.policy_name == "team=3/60s"
    assert limited.decision.blocks and limited.decision.is_budget
    assert spans[3].attributes[semconv.GENOPS_POLICY_RESULT] == "RATE_LIMITED"
    assert spans[3].attributes[semconv.GENOPS_POLICY_REASON_CODE] == "RATE_LIMITED"


def test_rate_limits_are_per_scope_value(governed, settings_from, call):
    ledger = MemoryLedger()
    with governed(settings_from(GENOPS_RATE_LIMITS="team=1/hour", GENOPS_TEAM="a"), ledger) as _:
        assert call() is None
        assert isinstance(call(), PolicyViolation)
    with governed(settings_from(GENOPS_RATE_LIMITS="team=1/hour", GENOPS_TEAM="b"), ledger) as _:
        assert call() is None


# --- decision order ------------------------------------------------------------------------------------
def test_order_model_then_content_then_rate_then_budget(governed, settings_from, call, make_request, clock, any_ledger):
    settings = settings_from(
        GENOPS_BLOCKED_MODELS="bad-*",
        GENOPS_CONTENT_POLICY="block",
        GENOPS_RATE_LIMITS="global=2/hour",
        GENOPS_BUDGETS="global=0.0021/day",
    )
    ledger = any_ledger  # SQLite checks rate and budget in one transaction, the others in two steps
    with governed(settings, ledger) as (rec, _):
        # A denied model with PII: the model decides; no rate slot, no reservation.
        assert call(make_request(model="bad-model", prompt=SAMPLES["email"])).reason_code == "POLICY_DENY_MODEL"
        assert call(make_request(prompt=SAMPLES["email"])).reason_code == "POLICY_DENY_CONTENT"
        assert call() is None  # rate 1/2, budget used up by this call
        assert call().reason_code == "BUDGET_EXCEEDED"  # rate 2/2, budget blocks
        assert call().reason_code == "RATE_LIMITED"  # rate decides before the budget
        spans = rec.spans()
    assert ledger.figures("budget|global|*|day|2026-11-18", clock()).spent == 2_100_000
    names = [[e.attributes[semconv.GENOPS_POLICY_NAME] for e in s.events if e.name == semconv.EVENT_POLICY_EVALUATED] for s in spans]
    assert names == [
        ["model_policy"],
        ["model_policy", "content_policy"],
        ["model_policy", "content_policy", "global=2/3600s", "global=0.0021/day"],
        ["model_policy", "content_policy", "global=2/3600s", "global=0.0021/day"],
        ["model_policy", "content_policy", "global=2/3600s"],
    ]


def test_warn_results_accumulate_into_one_warning(governed, settings_from, call, make_request):
    settings = settings_from(GENOPS_BLOCKED_MODELS="test-*", GENOPS_MODEL_POLICY="audit", GENOPS_CONTENT_POLICY="warn")
    with governed(settings) as (rec, _):
        assert call(make_request(prompt=SAMPLES["phone"])) is None
        (span,) = rec.spans()
    assert span.attributes[semconv.GENOPS_POLICY_RESULT] == "WARNING"
    assert span.attributes[semconv.GENOPS_POLICY_NAME] == "model_policy"  # the first warning names the decision
    assert span.attributes[semconv.GENOPS_POLICY_MODE] == "warn"  # any warn-mode result makes it a warn
    results = [(e.attributes[semconv.GENOPS_POLICY_NAME], e.attributes[semconv.GENOPS_POLICY_REASON_CODE], e.attributes[semconv.GENOPS_POLICY_MODE]) for e in span.events if e.name == semconv.EVENT_POLICY_EVALUATED]
    assert results == [("model_policy", "POLICY_DENY_MODEL", "audit"), ("content_policy", "POLICY_DENY_CONTENT", "warn")]
