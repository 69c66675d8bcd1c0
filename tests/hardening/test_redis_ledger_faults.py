"""Issue 14, items 7 and 8 on Redis, against a real redis-server made slow with ``DEBUG SLEEP``.

A command that times out on the client still runs on the server once it wakes up. Settlements that
time out are retried from a bounded queue and count exactly once; a reserve that times out is
cancelled, so it leaves no phantom reservation; what is finally lost is counted as ``settle_lost``.
A process SIGKILLed mid-call gives its reservation back within its (here, 1 s) lease, while a live
process keeps renewing its own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from genops_autoinstrument import config, semconv
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.governance.ledger.base import Bucket, BudgetCheck, Figures, LedgerError
from genops_autoinstrument.governance.ledger.redis import RedisLedger
from genops_autoinstrument.pricing.prices import Price

NOW = 1_795_000_000.0
KEY = "budget|global|*|total|total"
CHECK = BudgetCheck(KEY, 10**12, True, None)
BUCKETS = [Bucket(KEY, None)]
ESTIMATE = 2_100_000  # nano-USD: 100 input tokens at $1/M + 1000 output tokens at $2/M


@pytest.fixture
def url(redis_url: str) -> str:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url


def _stall(url: str, seconds: float = 0.2) -> threading.Thread:
    """Block the whole server for ``seconds`` from another connection (returns once it sleeps)."""
    import redis

    def sleep() -> None:
        client = redis.Redis.from_url(url)
        try:
            client.execute_command("DEBUG", "SLEEP", seconds)
        finally:
            client.close()

    thread = threading.Thread(target=sleep)
    thread.start()
    time.sleep(0.03)
    return thread


def _wait_for(condition: Any, seconds: float = 10.0) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < seconds, "condition not met in time"
        time.sleep(0.02)
    return time.monotonic() - began


def _figures(url: str) -> Figures:
    reader = RedisLedger(url, timeout_ms=2000)
    try:
        return reader.figures(KEY, time.time())
    finally:
        reader.close()


def test_a_settlement_that_times_out_but_runs_late_is_retried_and_counts_once(url):
    ledger = RedisLedger(url, timeout_ms=50)
    try:
        now = time.time()
        assert ledger.reserve("t1", 500, [CHECK], now + 600, now).reserved
        stall = _stall(url)
        with pytest.raises(LedgerError, match="Timeout"):
            ledger.settle("t1", 500, BUCKETS, 400, now)  # sent: it runs when the server wakes up
        assert ledger.pending == 1
        stall.join()
        _wait_for(lambda: ledger.pending == 0)  # the retry finds the ticket settled: nothing added twice
        assert _figures(url) == Figures(400, 0)
        assert ledger.settle("t1", 500, BUCKETS, 400, now) == {KEY: Figures(400, 0)}  # idempotent by ticket
        assert ledger._queue.lost == 0
    finally:
        ledger.close()


def test_a_reserve_that_times_out_leaves_no_phantom_reservation(url):
    ledger = RedisLedger(url, timeout_ms=50)
    try:
        now = time.time()
        stall = _stall(url)
        with pytest.raises(LedgerError, match="Timeout"):
            ledger.reserve("late", 700, [CHECK], now + 600, now)  # runs on the server after the sleep
        stall.join()
        _wait_for(lambda: ledger.pending == 0)  # its cancel landed (before or after the late reserve)
        assert _figures(url) == Figures(0, 0)
        assert not ledger.reserve("late", 700, [CHECK], now + 600, now).reserved  # a late or retried reserve of a finished ticket holds nothing
        assert _figures(url) == Figures(0, 0)
        ledger.settle("late", 700, BUCKETS, 650, now)  # reconcile late: a settlement after the cancel still counts
        assert _figures(url) == Figures(650, 0)
    finally:
        ledger.close()


def _governor(url: str, meter: Any, ledger: RedisLedger) -> EnforcingGovernor:
    settings = config.load({"GENOPS_BUDGETS": "global=100/total", "GENOPS_FAIL_MODE": "open", "GENOPS_LEDGER_TIMEOUT_MS": "50"})
    pricer = lambda p, m, u, b: Price((u.input_tokens * 1 + u.output_tokens * 2) / 1e6)  # noqa: E731
    return EnforcingGovernor(settings, ledger=ledger, pricer=pricer, meter=meter)


def _request() -> CallRequest:
    return CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400])


def _failures(reader: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == semconv.METRIC_LEDGER_FAILURES:
                    for point in metric.data.data_points:
                        counts[point.attributes[semconv.GENOPS_LEDGER_OPERATION]] = point.value
    return counts


def test_fail_open_spend_reaches_the_ledger_through_a_slow_redis_episode(url):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    ledger = RedisLedger(url, timeout_ms=50)
    governor = _governor(url, MeterProvider(metric_readers=[reader]).get_meter("test"), ledger)
    charged = 0
    try:
        for n in range(12):
            ticket = governor.decide(_request(), {})
            assert ticket.state is not None  # the server answers decisions in time
            cost = 0.0021 if n % 2 else 0.0011
            stall = _stall(url) if n % 3 == 0 else None  # every third settlement meets a stalled server
            governor.settle(ticket, cost, True)
            charged += round(cost * 1e9)
            if stall is not None:
                stall.join()
        _wait_for(lambda: ledger.pending == 0)
        assert _figures(url) == Figures(charged, 0)  # every call's cost, once; no phantom reservation
        assert _failures(reader) == {"settle": 4}  # the slow moments are reported, nothing was lost
    finally:
        governor.close()


def test_what_is_finally_lost_is_counted_as_settle_lost(unused_port):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    pytest.importorskip("redis")
    reader = InMemoryMetricReader()
    dead = f"redis://127.0.0.1:{unused_port}/0"  # nothing listens there
    ledger = RedisLedger(dead, timeout_ms=50)
    governor = _governor(dead, MeterProvider(metric_readers=[reader]).get_meter("test"), ledger)
    with pytest.raises(LedgerError):
        ledger.settle("gone", 0, BUCKETS, 1234, NOW)
    assert ledger.pending == 1
    governor.close()  # retried once more (bounded), then given up and reported
    assert ledger.pending == 0
    assert _failures(reader) == {"settle_lost": 1}


CHILD = r"""
import sys, time
from genops_autoinstrument import config
from genops_autoinstrument.engine.call import CallRequest
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.governance.ledger.redis import RedisLedger
from genops_autoinstrument.pricing.prices import Price

ledger = RedisLedger(sys.argv[1], timeout_ms=2000, lease_seconds=1.0)
settings = config.load({"GENOPS_BUDGETS": "global=0.00315/total", "GENOPS_FAIL_MODE": "closed"})
pricer = lambda p, m, u, b: Price((u.input_tokens * 1 + u.output_tokens * 2) / 1e6)
governor = EnforcingGovernor(settings, ledger=ledger, pricer=pricer)
ticket = governor.decide(CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400]), {})
print("held" if ticket.state is not None else "refused", flush=True)
time.sleep(3600)  # "mid-call": the keeper thread keeps renewing the lease
"""


def test_a_process_killed_mid_call_gives_its_reservation_back_within_its_lease(url, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), url], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        time.sleep(2.5)  # more than two leases: a live process renews its reservation
        assert _figures(url).reserved == ESTIMATE
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        killed_at = time.time()
    # The reservation is held until its lease ends, which the dead process can no longer move: within
    # the 1 s lease of the kill (read from the ledger, not timed), not the reservation's 10 minutes.
    import redis

    client = redis.Redis.from_url(url)
    try:
        held = client.zrange("genops:{ledger}:r:" + KEY, 0, -1, withscores=True)
    finally:
        client.close()
    assert len(held) == 1 and all(lease_end <= killed_at + 1.0 for _, lease_end in held), (held, killed_at)
    _wait_for(lambda: _figures(url).reserved == 0, seconds=30)
    ledger = RedisLedger(url, timeout_ms=2000, lease_seconds=1.0)
    settings = config.load({"GENOPS_BUDGETS": "global=0.00315/total", "GENOPS_FAIL_MODE": "closed"})
    governor = EnforcingGovernor(settings, ledger=ledger, pricer=lambda p, m, u, b: Price((u.input_tokens * 1 + u.output_tokens * 2) / 1e6))
    try:
        ticket = governor.decide(_request(), {})  # 1.5 estimates of budget: room again for one call
        assert ticket.decision.result == "ALLOWED" and ticket.state is not None
        governor.settle(ticket, 0.0021, True)
        assert _figures(url) == Figures(ESTIMATE, 0)
    finally:
        governor.close()


def test_fail_open_a_call_whose_reserve_timed_out_still_has_its_spend_recorded(url):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    ledger = RedisLedger(url, timeout_ms=50)
    governor = _governor(url, MeterProvider(metric_readers=[reader]).get_meter("test"), ledger)
    try:
        stall = _stall(url)
        ticket = governor.decide(_request(), {})  # the reserve times out: fail-open lets the call run
        assert not ticket.decision.blocks
        stall.join()
        governor.settle(ticket, 0.0015, True)
        _wait_for(lambda: ledger.pending == 0)  # the cancel of the late reserve, then the settlement
        assert _figures(url) == Figures(1_500_000, 0)  # its cost counted once, nothing held
        assert _failures(reader) == {"reserve": 1}
    finally:
        governor.close()


def test_a_settlement_queued_where_no_thread_can_start_is_drained_at_exit(url, monkeypatch):
    # Python 3.12.0-1 refuse new threads during interpreter shutdown: the keeper cannot start,
    # so the exit drain must still know this ledger and retry its queue.
    from genops_autoinstrument.governance.ledger import redis as redis_ledger

    ledger = RedisLedger(url, timeout_ms=50)
    try:
        now = time.time()  # no reserve first: this ledger has never started its keeper
        stall = _stall(url)

        def refuse(self):
            raise RuntimeError("can't create new thread at interpreter shutdown")

        monkeypatch.setattr(threading.Thread, "start", refuse)
        with pytest.raises(LedgerError, match="Timeout"):
            ledger.settle("t-exit", 500, BUCKETS, 400, now)  # queued; no keeper can start, nothing raised for it
        monkeypatch.undo()
        stall.join()
        assert ledger.pending == 1 and ledger in redis_ledger._live
        redis_ledger._drain_at_exit()
        assert ledger.pending == 0
        assert _figures(url) == Figures(400, 0)  # counted once, by the settlement that ran late or the retry
    finally:
        ledger.close()
