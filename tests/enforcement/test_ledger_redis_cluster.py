"""The ledger on a real 3-node Redis Cluster (``redis+cluster://``) and on TLS with a password (``rediss://``).

Each fixture starts real redis-server processes on free loopback ports for this module and always kills
them at teardown; the tests skip (saying why) only when the binaries are not installed.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from genops_autoinstrument import semconv
from genops_autoinstrument.governance.decisions import PolicyViolation
from genops_autoinstrument.governance.ledger.base import Bucket, BudgetCheck, Figures, LedgerError, RateCheck
from genops_autoinstrument.governance.ledger.factory import open_ledger
from genops_autoinstrument.governance.ledger.redis import PREFIX, RedisLedger
from genops_autoinstrument.pricing.usage import Usage

NOW = 1_795_000_000.0
TOTAL_KEY = "budget|global|*|total|total"
DAY_KEY = "budget|team|search|day|2026-11-18"
PASSWORD = "s3cret-Pa55word"


# --- real servers ------------------------------------------------------------------------------------
def _free_port(cluster_bus: bool = False) -> int:
    """A free loopback port; for a cluster node also its bus port (port + 10000) must be free."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not cluster_bus:
            return port
        if port + 10000 < 65536:
            try:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                continue
    raise RuntimeError("no free loopback port pair for a cluster node")


def _binaries(*names: str) -> list[str]:
    found = [shutil.which(name) for name in names]
    missing = [name for name, path in zip(names, found) if path is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install redis-server redis-tools openssl); these tests need real servers")
    pytest.importorskip("redis", reason="the redis Python package is not installed (pip install 'genops-autoinstrument[redis]')")
    return [path for path in found if path]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait(probe: Any, processes: list[subprocess.Popen], what: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    last: Any = None
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with status {process.returncode} while waiting for {what}")
        try:
            if probe():
                return
        except Exception as error:  # not up yet
            last = error
        time.sleep(0.05)
    pytest.fail(f"{what} not reached within {seconds} s (last error: {last!r})")


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """Three master nodes of a real Redis Cluster covering all 16384 slots."""
    server, cli = _binaries("redis-server", "redis-cli")
    import redis

    folder = tmp_path_factory.mktemp("redis-cluster")
    ports: list[int] = []
    processes: list[subprocess.Popen] = []
    try:
        for _ in range(3):
            port = _free_port(cluster_bus=True)
            while port in ports:
                port = _free_port(cluster_bus=True)
            ports.append(port)
            processes.append(
                subprocess.Popen(
                    [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                     "--cluster-config-file", str(folder / f"nodes-{port}.conf"), "--save", "", "--appendonly", "no",
                     "--dir", str(folder)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        clients = [redis.Redis(host="127.0.0.1", port=port, socket_timeout=2) for port in ports]
        try:
            _wait(lambda: all(client.ping() for client in clients), processes, "the cluster nodes answering PING")
            created = subprocess.run(
                [cli, "--cluster", "create", *[f"127.0.0.1:{port}" for port in ports], "--cluster-replicas", "0", "--cluster-yes"],
                capture_output=True, text=True, timeout=60,
            )
            assert created.returncode == 0, created.stdout + created.stderr
            _wait(lambda: all(_cluster_ok(client) for client in clients),
                  processes, "cluster_state:ok on every node")
        finally:
            for client in clients:
                client.close()
        yield ports
    finally:
        _stop(processes)


def _cluster_ok(client: Any) -> bool:
    info = client.execute_command("CLUSTER INFO")
    if isinstance(info, dict):
        return info.get("cluster_state") == "ok"
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


def _flush(ports: list[int]) -> None:
    import redis

    for port in ports:
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            client.flushall()
        finally:
            client.close()


@pytest.fixture
def cluster_url(cluster_ports: list[int]) -> str:
    _flush(cluster_ports)
    return f"redis+cluster://127.0.0.1:{cluster_ports[0]}"


@pytest.fixture
def cluster_ledger(cluster_url: str) -> Iterator[RedisLedger]:
    ledger = open_ledger(cluster_url, 2000)
    assert isinstance(ledger, RedisLedger)
    yield ledger
    ledger.close()


def _cluster_keys(ports: list[int]) -> dict[str, int]:
    """Every key on every node -> the node port it lives on."""
    import redis

    found: dict[str, int] = {}
    for port in ports:
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            for key in client.scan_iter("*"):
                found[key.decode()] = port
        finally:
            client.close()
    return found


# --- Redis Cluster -----------------------------------------------------------------------------------
def test_the_cluster_really_spreads_slots_over_three_nodes(cluster_ports):
    import redis
    from redis.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0])
    try:
        owners = {client.get_node_from_key(name).port for name in ("a", "b", "c", "d", "e", "f", "g", "h")}
        assert len(client.get_primaries()) == 3
        assert len(owners) > 1  # plain keys land on different nodes ...
        with pytest.raises(redis.RedisClusterException):  # ... so a multi-key script without a hash tag is refused
            client.eval("return redis.call('MGET', KEYS[1], KEYS[2])", 2, "genops:a", "genops:b")
    finally:
        client.close()


def test_contract_reserve_settle_release_on_the_cluster(cluster_ledger, cluster_ports):
    ledger = cluster_ledger
    other = "budget|global|*|day|2026-11-18"
    expires = NOW + 86400

    def checks(limit: int) -> list[BudgetCheck]:
        return [BudgetCheck(DAY_KEY, limit, True, expires), BudgetCheck(other, 10_000, False, expires)]

    assert ledger.reserve("t1", 400, checks(1000), NOW + 600, NOW).reserved
    assert ledger.reserve("t2", 400, checks(1000), NOW + 600, NOW).figures == (Figures(0, 400), Figures(0, 400))
    third = ledger.reserve("t3", 400, checks(1000), NOW + 600, NOW)
    assert not third.reserved and third.over == (True, False) and third.figures == (Figures(0, 800), Figures(0, 800))
    buckets = [Bucket(DAY_KEY, expires), Bucket(other, expires)]
    assert ledger.settle("t1", 400, buckets, 350, NOW + 1) == {DAY_KEY: Figures(350, 400), other: Figures(350, 400)}
    ledger.release("t2", 400, buckets, NOW + 2)
    assert ledger.figures(DAY_KEY, NOW + 3) == Figures(350, 0) == ledger.figures(other, NOW + 3)
    assert ledger.reserve("t4", 650, checks(1000), NOW + 600, NOW + 3).reserved
    assert ledger.settle("t4", 650, buckets, 650, NOW + 4)[DAY_KEY] == Figures(1000, 0)
    assert not ledger.reserve("t5", 0, checks(1000), NOW + 600, NOW + 5).reserved
    rule = [RateCheck("rate|team|a|60", 2, 60), RateCheck("rate|global|*|60", 100, 60)]
    start = 1_795_000_020.0
    assert ledger.hit(rule, start).allowed and ledger.hit(rule, start + 1).allowed
    assert ledger.hit(rule, start + 2).over == (True, False)
    assert ledger.hit(rule, start + 90).allowed
    assert ledger.first_alert("alert|" + DAY_KEY, expires, NOW) is True
    assert ledger.first_alert("alert|" + DAY_KEY, expires, NOW + 1) is False
    assert ledger.reserve("t6", 1, [BudgetCheck(TOTAL_KEY, 10**9, True, None)], NOW + 600, NOW + 5).reserved  # left in flight

    from redis.cluster import RedisCluster

    keys = _cluster_keys(cluster_ports)
    assert {k.split(":", 2)[2][0] for k in keys} == {"b", "r", "q", "a"}  # spend, reservations, rate windows, alerts
    assert all(k.startswith(PREFIX) for k in keys)
    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0])
    try:
        slots = {client.keyslot(k) for k in keys}
    finally:
        client.close()
    assert len(slots) == 1  # one hash tag: every script's keys are in one slot (no CROSSSLOT)
    assert len(set(keys.values())) == 1


def test_the_whole_budget_story_through_the_governor_on_the_cluster(governed, settings_from, call, span_events, clock, cluster_ledger):
    settings = settings_from(
        GENOPS_BUDGETS="team=0.005/day;global=1/total", GENOPS_TEAM="search", GENOPS_BUDGET_ALERT_THRESHOLD="0.8",
        GENOPS_RATE_LIMITS="team=5/min",
    )
    with governed(settings, cluster_ledger) as (rec, _):
        # 0.0021, then 0.0007 actual (reserved 0.0021), then 0.0021: 0.0049 of 0.005, alert at >= 0.004
        outcomes = [call(), call(usage=Usage(input_tokens=100, output_tokens=300)), call(), call()]
        clock.advance(86400)
        outcomes += [call(), call(), call(), call(), call(), call()]  # a new day: 2 fit the budget, then the rate window
        spans = rec.spans()
    assert outcomes[:3] == [None, None, None] and outcomes[4:6] == [None, None]
    assert outcomes[3].reason_code == "BUDGET_EXCEEDED" and outcomes[3].budget.consumed == 0.0049
    assert [o.reason_code for o in outcomes[6:]] == ["BUDGET_EXCEEDED", "BUDGET_EXCEEDED", "BUDGET_EXCEEDED", "RATE_LIMITED"]
    assert [len(span_events(s, semconv.EVENT_BUDGET_ALERT)) for s in spans[:6]] == [0, 0, 1, 0, 0, 1]  # once per day
    assert cluster_ledger.figures(DAY_KEY, clock() - 86400) == Figures(4_900_000, 0)
    assert cluster_ledger.figures("budget|team|search|day|2026-11-19", clock()) == Figures(4_200_000, 0)
    assert cluster_ledger.figures(TOTAL_KEY, clock()) == Figures(9_100_000, 0)
    with governed(settings, cluster_ledger) as (rec, _):  # a restarted process sees the same state
        clock.advance(3600)
        blocked = call()
    assert isinstance(blocked, PolicyViolation) and blocked.budget.consumed == 0.0042


WORKER = r'''
import json, sys, threading
from genops_autoinstrument import config
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.pricing.prices import Price
from genops_autoinstrument.engine.call import CallRequest

url, threads, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
settings = config.load({"GENOPS_BUDGETS": "global=0.21/total", "GENOPS_LEDGER_URL": url,
                        "GENOPS_LEDGER_TIMEOUT_MS": "5000", "GENOPS_FAIL_MODE": "closed"})
pricer = lambda p, m, u, b: Price((u.input_tokens * 1 + u.output_tokens * 2) / 1e6)
governor = EnforcingGovernor(settings, pricer=pricer)
request = CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400])
lock = threading.Lock()
totals = {"allowed": 0, "blocked": 0, "failed": 0, "charged": 0}

def run():
    for _ in range(calls):
        ticket = governor.decide(request, {})
        if ticket.decision.blocks:
            key = "failed" if ticket.decision.reason_code == "BUDGET_RESERVATION_FAILED" else "blocked"
            with lock:
                totals[key] += 1
            continue
        governor.settle(ticket, 0.0021, True)
        with lock:
            totals["allowed"] += 1
            totals["charged"] += 2_100_000

workers = [threading.Thread(target=run) for _ in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
governor.close()
print(json.dumps(totals))
'''


def test_processes_spend_the_budget_exactly_never_over_on_the_cluster(cluster_url, tmp_path):
    worker = tmp_path / "cluster_worker.py"
    worker.write_text(WORKER)
    running = [
        subprocess.Popen([sys.executable, str(worker), cluster_url, "4", "12"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = []
    for process in running:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["failed"] for r in results) == 0
    assert sum(r["allowed"] for r in results) == 100  # 0.21 / 0.0021: every dollar used, none over
    assert sum(r["blocked"] for r in results) == 4 * 4 * 12 - 100
    ledger = open_ledger(cluster_url, 2000)
    try:
        assert ledger.figures(TOTAL_KEY, time.time()) == Figures(210_000_000, 0) == Figures(sum(r["charged"] for r in results), 0)
    finally:
        ledger.close()


# --- rediss:// with a password -----------------------------------------------------------------------
CA_CONFIG = """\
[req]
distinguished_name = name
prompt = no
[name]
CN = GenOps test CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""
SERVER_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def _openssl(openssl: str, folder: Path, *args: str) -> None:
    done = subprocess.run([openssl, *args], cwd=folder, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A TLS-only redis-server requiring a password, with a throw-away CA; yields (port, ca.pem)."""
    server, openssl = _binaries("redis-server", "openssl")
    import redis

    folder = tmp_path_factory.mktemp("redis-tls")
    # Certificates that pass strict X.509 checks (Python 3.13's default contexts verify with
    # VERIFY_X509_STRICT): a CA with critical basicConstraints, keyUsage and a key identifier, a
    # server certificate naming its issuer's key, whatever the system's openssl.cnf adds or not.
    (folder / "ca.cnf").write_text(CA_CONFIG)
    (folder / "server.ext").write_text(SERVER_EXTENSIONS)
    _openssl(openssl, folder, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-config", "ca.cnf",
             "-extensions", "ca", "-keyout", "ca.key", "-out", "ca.pem")
    _openssl(openssl, folder, "req", "-newkey", "rsa:2048", "-nodes", "-config", "ca.cnf", "-subj", "/CN=127.0.0.1",
             "-keyout", "server.key", "-out", "server.csr")
    _openssl(openssl, folder, "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "server.ext", "-out", "server.pem")
    port = _free_port()
    process = subprocess.Popen(
        [server, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--tls-cert-file", str(folder / "server.pem"),
         "--tls-key-file", str(folder / "server.key"), "--tls-ca-cert-file", str(folder / "ca.pem"), "--tls-auth-clients", "no",
         "--requirepass", PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(folder / "ca.pem"), password=PASSWORD, socket_timeout=2)
    try:
        try:
            _wait(client.ping, [process], "the TLS redis-server answering PING")
        except BaseException:
            if process.poll() is not None and "tls" in (process.stdout.read() if process.stdout else "").lower():
                pytest.skip("this redis-server was built without TLS support")
            raise
        yield port, folder / "ca.pem"
    finally:
        client.close()
        _stop([process])
        if process.stdout:
            process.stdout.close()


def test_rediss_with_a_password_runs_the_contract(tls_server, governed, settings_from, call, clock):
    port, ca = tls_server
    url = f"rediss://:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    ledger = open_ledger(url, 2000)
    try:
        ledger._redis().flushdb()
        settings = settings_from(GENOPS_BUDGETS="global=0.005/total")
        with governed(settings, ledger) as _:
            assert [call(), call()] == [None, None]
            assert call().reason_code == "BUDGET_EXCEEDED"
        assert ledger.figures(TOTAL_KEY, clock()) == Figures(4_200_000, 0)
        assert ledger.hit([RateCheck("rate|global|*|1", 1, 1)], NOW).allowed
    finally:
        ledger.close()


@pytest.mark.parametrize("problem", ["wrong password", "untrusted CA"])
def test_tls_and_auth_failures_never_show_the_password(tls_server, tmp_path, caplog, problem):
    port, ca = tls_server
    if problem == "wrong password":
        secret = "Wr0ng-" + PASSWORD
        url = f"rediss://ops:{secret}@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    else:
        secret = PASSWORD
        url = f"rediss://:{secret}@127.0.0.1:{port}/0"  # the system CAs do not trust the throw-away CA
    caplog.set_level(logging.DEBUG)
    ledger = open_ledger(url, 2000)
    try:
        with pytest.raises(LedgerError) as caught:
            ledger.reserve("t", 1, [BudgetCheck("k", 10, True, None)], NOW + 600, NOW)
    finally:
        ledger.close()
    message = str(caught.value)
    assert f"rediss://***@127.0.0.1:{port}/0" in message
    assert ("Authentication" in message or "WRONGPASS" in message) if problem == "wrong password" else ("SSL" in message or "certificate" in message)
    shown = message + repr(caught.value) + "\n".join(r.getMessage() for r in caplog.records)
    assert secret not in shown and PASSWORD not in shown and "ops:" not in shown
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained error carries the URL


def test_a_password_protected_server_refuses_a_url_without_the_password(tls_server):
    port, ca = tls_server
    ledger = RedisLedger(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}", timeout_ms=2000)
    try:
        with pytest.raises(LedgerError, match="Authentication|NOAUTH|AuthenticationError"):
            ledger.figures(TOTAL_KEY, NOW)
    finally:
        ledger.close()
