"""Ledger failures follow GENOPS_FAIL_MODE; credentials in the ledger URL never leak."""

from __future__ import annotations

import logging
import socket

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.governance.ledger_link import ATTR_LEDGER_STATUS
from genops_autoinstrument.governance.decisions import PolicyViolation
from genops_autoinstrument.governance.ledger.factory import open_ledger
from genops_autoinstrument.governance.ledger.sqlite import SqliteLedger
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.engine.runtime import begin_call
from genops_autoinstrument.pricing.usage import Usage

PASSWORD = "s3cr3t-Pa55word"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when this returns: nothing listens there


def _dead_redis_url() -> str:
    return f"redis://admin:{PASSWORD}@127.0.0.1:{_closed_port()}/0"


@pytest.fixture
def dead_redis(settings_from):
    pytest.importorskip("redis")
    url = _dead_redis_url()

    def make(**env: str):
        settings = settings_from(GENOPS_LEDGER_URL=url, GENOPS_LEDGER_TIMEOUT_MS="50", **env)
        return settings, open_ledger(url, 50)

    return make


def test_fail_open_allows_counts_and_marks_the_span(governed, dead_redis, call, caplog):
    settings, ledger = dead_redis(GENOPS_BUDGETS="team=1/day", GENOPS_RATE_LIMITS="team=5/min", GENOPS_TEAM="search")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    with caplog.at_level(logging.DEBUG, logger="genops"), governed(settings, ledger, meter=meter) as (rec, governor):
        assert call() is None
        assert call() is None
        spans = rec.spans()
        # The engine binds the governor to its own meter: the failures are with GenOps' metrics.
        points = {attributes["genops.ledger.operation"]: point.value for attributes, point in rec.metrics()[semconv.METRIC_LEDGER_FAILURES]}
    # rate + reserve, twice; the calls ran (fail-open), so their spend is still settled: each
    # settlement fails, is queued, and is reported lost when the governor closes (nothing silent).
    assert governor.ledger_failures == 8
    assert all(s.attributes[semconv.GENOPS_POLICY_RESULT] == "ALLOWED" for s in spans)
    assert all(s.attributes[ATTR_LEDGER_STATUS] == "unavailable" for s in spans)
    assert points == {"rate": 2, "reserve": 2, "settle": 2}
    kinds = {"rate", "reserve", "settle", "settle_lost"}
    assert len([r for r in caplog.records if "ledger" in r.getMessage()]) == len(kinds)  # once per operation kind
    assert PASSWORD not in caplog.text and "admin" not in caplog.text
    assert "redis://***@127.0.0.1" in caplog.text


def test_fail_closed_blocks_with_reservation_failed(governed, dead_redis, call, caplog):
    settings, ledger = dead_redis(GENOPS_BUDGETS="team=1/day", GENOPS_TEAM="search", GENOPS_FAIL_MODE="closed")
    with caplog.at_level(logging.DEBUG, logger="genops"), governed(settings, ledger) as (rec, _):
        blocked = call()
        (span,) = rec.spans()
    assert isinstance(blocked, PolicyViolation)
    assert blocked.result == semconv.RESULT_BLOCKED
    assert blocked.reason_code == semconv.REASON_BUDGET_RESERVATION_FAILED
    assert span.attributes[semconv.GENOPS_POLICY_REASON_CODE] == "BUDGET_RESERVATION_FAILED"
    everything = caplog.text + str(blocked) + repr(dict(span.attributes)) + repr([dict(e.attributes) for e in span.events])
    assert PASSWORD not in everything


def test_fail_closed_rate_limit_blocks_too(governed, dead_redis, call):
    settings, ledger = dead_redis(GENOPS_RATE_LIMITS="global=5/min", GENOPS_FAIL_MODE="closed")
    with governed(settings, ledger) as (rec, _):
        blocked = call()
    assert blocked.reason_code == semconv.REASON_BUDGET_RESERVATION_FAILED


def test_fail_closed_does_not_block_when_only_audit_budgets_are_affected(governed, dead_redis, call):
    settings, ledger = dead_redis(GENOPS_BUDGETS="team=1/day:audit", GENOPS_TEAM="x", GENOPS_FAIL_MODE="closed")
    with governed(settings, ledger) as (rec, governor):
        assert call() is None
    assert governor.ledger_failures == 3  # reserve; the call ran, so its settlement is tried, then reported lost


def test_unusable_sqlite_path_is_a_ledger_failure_not_a_crash(governed, settings_from, call, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the ledger folder should be")
    ledger = SqliteLedger(str(blocker / "ledger.db"), timeout_ms=50)
    with governed(settings_from(GENOPS_BUDGETS="global=1/day", GENOPS_FAIL_MODE="closed"), ledger) as (rec, governor):
        assert call().reason_code == "BUDGET_RESERVATION_FAILED"
    with governed(settings_from(GENOPS_BUDGETS="global=1/day"), ledger) as (rec, governor):
        assert call() is None
    assert governor.ledger_failures == 1


def test_rate_and_budget_in_one_sqlite_transaction_fail_together(governed, settings_from, call, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    ledger = SqliteLedger(str(blocker / "ledger.db"), timeout_ms=50)
    both = {"GENOPS_BUDGETS": "global=1/day:audit", "GENOPS_RATE_LIMITS": "global=10/min"}
    with governed(settings_from(GENOPS_FAIL_MODE="closed", **both), ledger) as (rec, governor):
        assert call().reason_code == "BUDGET_RESERVATION_FAILED"  # the rate limit cannot be checked
    with governed(settings_from(**both), ledger) as (rec, governor):
        assert call() is None
        (span,) = rec.spans()
    assert governor.ledger_failures == 1
    assert span.attributes[ATTR_LEDGER_STATUS] == "unavailable"
    assert semconv.GENOPS_ACCOUNTING_RESERVED not in span.attributes


def test_settle_failure_is_counted_and_the_call_still_ends(governed, settings_from, call, tmp_path, span_events):
    ledger = SqliteLedger(str(tmp_path / "l.db"), timeout_ms=50)
    with governed(settings_from(GENOPS_BUDGETS="global=1/day"), ledger) as (rec, governor):
        recorded = begin_call(CallRequest("openai", "chat", "test-model", prompt_text=lambda: ["hi"]))
        ledger._conn.close()  # the database goes away under the running call
        ledger._conn = None
        ledger.path = str(tmp_path / "missing-dir-file")
        (tmp_path / "missing-dir-file").mkdir()  # a directory: SQLite cannot open it
        with recorded:
            pass
        recorded.finish(response_model="test-model", usage=Usage(input_tokens=10, output_tokens=10))
        (span,) = rec.spans()
    assert governor.ledger_failures == 1
    assert span.attributes[semconv.GENOPS_ACCOUNTING_ACTUAL] == 0.00003
    assert len(span_events(span, semconv.EVENT_BUDGET_RECONCILIATION)) == 1


def test_default_governor_uses_the_url_from_settings(settings_from, tmp_path):
    path = tmp_path / "from-settings.db"
    governor = EnforcingGovernor(settings_from(GENOPS_BUDGETS="global=1/day", GENOPS_LEDGER_URL=f"sqlite:///{path}"))
    assert isinstance(governor.ledger, SqliteLedger) and governor.ledger.path == str(path)
    assert not path.exists()  # opening is lazy
    governor.close()
