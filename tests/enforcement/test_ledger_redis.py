"""Redis specifics: keys expire after their period, commands are bounded by the timeout, no password leaks."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from genops_autoinstrument.governance.ledger.base import Bucket, BudgetCheck, LedgerError, RateCheck
from genops_autoinstrument.governance.ledger.redis import PREFIX, RedisLedger

NOW = 1_795_000_000.0


def test_keys_expire_after_their_period(redis_ledger, redis_url):
    import redis

    check = BudgetCheck("budget|team|a|day|2026-11-18", 10**9, True, NOW + 3600)
    assert redis_ledger.reserve("t1", 100, [check], NOW + 600, NOW).reserved
    redis_ledger.settle("t1", 100, [Bucket(check.key, NOW + 3600)], 90, NOW)
    assert redis_ledger.reserve("t2", 100, [check], NOW + 600, NOW).reserved  # left in flight
    redis_ledger.hit([RateCheck("rate|team|a|60", 10, 60)], NOW)
    redis_ledger.first_alert("alert|x", NOW + 7200, NOW)
    assert redis_ledger.first_alert("alert|total", None, NOW)
    client = redis.Redis.from_url(redis_url)
    try:
        ttls = {key.decode(): client.pttl(key) for key in client.scan_iter(PREFIX + "*")}
    finally:
        client.close()
    spend = ttls[PREFIX + "b:" + check.key]
    assert 3_590_000 < spend <= 3_600_000  # period end + grace, measured from the caller's clock
    assert 0 < ttls[PREFIX + "r:" + check.key] <= 660_000  # the reservation zset outlives its last reservation by a minute
    (rate_key,) = [k for k in ttls if k.startswith(PREFIX + "q:")]
    assert 0 < ttls[rate_key] <= 120_000  # two windows
    assert 7_190_000 < ttls[PREFIX + "a:alert|x"] <= 7_200_000
    assert ttls[PREFIX + "a:alert|total"] == -1  # a total budget's alert never expires


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def test_a_server_that_never_answers_is_a_bounded_ledger_error(silent_server):
    pytest.importorskip("redis")
    ledger = RedisLedger(f"redis://ops:Sup3rSecret@127.0.0.1:{silent_server}/0", timeout_ms=50)
    with pytest.raises(LedgerError) as caught:
        ledger.reserve("t", 1, [BudgetCheck("k", 10, True, None)], NOW + 600, NOW)
    message = str(caught.value)
    assert "Timeout" in message
    assert "Sup3rSecret" not in message and "ops:" not in message
    assert f"redis://***@127.0.0.1:{silent_server}/0" in message
    ledger.close()


CHECK = BudgetCheck("budget|global|*|total|total", 10**12, True, None)
BUCKETS = [Bucket(CHECK.key, None)]


def test_a_server_that_lost_its_scripts_loads_them_again(redis_ledger, redis_url):
    import redis

    assert redis_ledger.reserve("t1", 100, [CHECK], NOW + 600, NOW).reserved
    client = redis.Redis.from_url(redis_url)
    try:
        client.script_flush()  # a restarted or failed-over server has no scripts
    finally:
        client.close()
    assert redis_ledger.settle("t1", 100, BUCKETS, 90, NOW) == {CHECK.key: (90, 0)}
    assert redis_ledger.reserve("t2", 100, [CHECK], NOW + 600, NOW).figures[0] == (90, 0)


def test_an_answer_that_came_too_late_is_never_read_as_the_next_commands(redis_url):
    """The reserve times out on the client and its reply arrives later on that connection: the ledger
    must drop the connection, or the next settlement would read the reserve's reply as its own.
    (Fails, for one, when the wire reads with ``read_response(disconnect_on_error=False)``.)"""
    import time

    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    ledger = RedisLedger(redis_url, timeout_ms=50)
    try:
        assert ledger.reserve("t0", 100, [CHECK], NOW + 600, NOW).reserved
        stall = threading.Thread(target=client.execute_command, args=("DEBUG", "SLEEP", 0.3))
        stall.start()
        time.sleep(0.05)
        with pytest.raises(LedgerError, match="Timeout"):
            ledger.reserve("late", 700, [CHECK], NOW + 600, NOW)  # runs, and answers, once the server wakes
        stall.join()
        began = time.monotonic()
        while ledger.pending and time.monotonic() - began < 10:  # the reserve's cancel, retried by the keeper
            time.sleep(0.02)
        assert ledger.pending == 0
        assert ledger.settle("t0", 100, BUCKETS, 90, NOW) == {CHECK.key: (90, 0)}
    finally:
        ledger.close()
        client.close()


def test_the_ledgers_traffic_stays_out_of_the_applications_redis_instrumentation(redis_ledger):
    """Redis instrumentations (OpenTelemetry's, Datadog's) wrap ``Redis.execute_command``; the ledger's
    scripts must not appear in the application's traces as its own commands."""
    import redis
    import wrapt

    seen: list[Any] = []

    def record(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        seen.append(args[0])
        return wrapped(*args, **kwargs)

    original = redis.Redis.execute_command
    wrapt.wrap_function_wrapper(redis.Redis, "execute_command", record)
    try:
        assert redis_ledger.reserve("t1", 100, [CHECK], NOW + 600, NOW).reserved
        redis_ledger.settle("t1", 100, BUCKETS, 90, NOW)
        redis_ledger.release("t2", 100, BUCKETS, NOW)
    finally:
        redis.Redis.execute_command = original
    assert seen == []


def test_a_connection_the_server_closed_is_reconnected_not_a_failed_decision(redis_ledger, redis_url):
    """A restart, a failover, the server's idle ``timeout`` or a proxy closes kept connections; the
    next decision must reconnect (as redis-py's pool does), not fail or refuse the call."""
    import redis

    assert redis_ledger.reserve("t1", 100, [CHECK], NOW + 600, NOW).reserved
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.execute_command("CLIENT KILL", "TYPE", "normal", "SKIPME", "yes") >= 1  # the ledger's
    finally:
        client.close()
    assert redis_ledger.settle("t1", 100, BUCKETS, 90, NOW) == {CHECK.key: (90, 0)}
    assert redis_ledger.reserve("t2", 100, [CHECK], NOW + 600, NOW).reserved


def test_a_reserve_sent_again_after_it_ran_is_answered_as_reserved_and_counted_once(redis_ledger):
    """The wire resends a script when a connection fails; if the server had run the first send, the
    second must not count the ticket's own amount twice (a refusal would leave the first one held)."""
    check = BudgetCheck("budget|global|*|total|total", 150, True, None)
    first = redis_ledger.reserve("t1", 100, [check], NOW + 600, NOW)
    again = redis_ledger.reserve("t1", 100, [check], NOW + 600, NOW)
    assert first.reserved and again.reserved
    assert again.figures[0] == (0, 0)  # its own reservation is not counted against it
    assert redis_ledger.figures(check.key, NOW) == (0, 100)  # held once
    assert not redis_ledger.reserve("t2", 100, [check], NOW + 600, NOW).reserved  # another ticket sees it
