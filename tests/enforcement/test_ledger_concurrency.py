"""Many real processes and threads spending against one budget: no overrun, nothing lost or counted twice."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from genops_autoinstrument import config
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.governance.ledger.factory import open_ledger
from genops_autoinstrument.pricing.prices import Price
from genops_autoinstrument.engine.call import CallRequest

ESTIMATE = 2_100_000  # nano-USD: 100 input tokens at $1/M + 1000 output tokens at $2/M
TOTAL_KEY = "budget|global|*|total|total"

WORKER = r'''
import json, sys, threading
from genops_autoinstrument import config
from genops_autoinstrument.governance.enforcing import EnforcingGovernor
from genops_autoinstrument.pricing.prices import Price
from genops_autoinstrument.engine.call import CallRequest

url, threads, calls, mode, ttl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
settings = config.load({"GENOPS_BUDGETS": "global=0.21/total", "GENOPS_LEDGER_URL": url,
                        "GENOPS_LEDGER_TIMEOUT_MS": "5000", "GENOPS_FAIL_MODE": "closed"})
pricer = lambda p, m, u, b: Price((u.input_tokens * 1 + u.output_tokens * 2) / 1e6)
governor = EnforcingGovernor(settings, pricer=pricer, reservation_ttl=ttl)
request = CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400])
if mode == "hold":
    ticket = governor.decide(request, {})
    print("held" if ticket.state is not None else "refused", flush=True)
    threading.Event().wait()
lock = threading.Lock()
totals = {"allowed": 0, "blocked": 0, "failed": 0, "charged": 0}

def run(index):
    for n in range(calls):
        ticket = governor.decide(request, {})
        if ticket.decision.blocks:
            key = "failed" if ticket.decision.reason_code == "BUDGET_RESERVATION_FAILED" else "blocked"
            with lock:
                totals[key] += 1
            continue
        # "exact": actual == estimate; "cheaper": every other call costs half the estimate
        actual = 0.0021 if mode == "exact" or n % 2 else 0.00105
        settlement = governor.settle(ticket, actual, True)
        with lock:
            totals["allowed"] += 1
            totals["charged"] += round(actual * 1e9)

workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
governor.close()
print(json.dumps(totals))
'''


@pytest.fixture
def worker(tmp_path):
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return str(path)


def _spend(worker: str, url: str, processes: int, threads: int, calls: int, mode: str) -> list[dict]:
    running = [
        subprocess.Popen([sys.executable, worker, url, str(threads), str(calls), mode, "600"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    results = []
    for process in running:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.fixture(params=["sqlite", "redis"])
def shared_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/shared/ledger.db"
    request.getfixturevalue("redis_ledger")  # a fresh database on the session's redis-server
    return request.getfixturevalue("redis_url")


def test_exact_estimates_spend_the_budget_exactly_across_processes_and_threads(worker, shared_url):
    results = _spend(worker, shared_url, processes=4, threads=4, calls=12, mode="exact")
    allowed = sum(r["allowed"] for r in results)
    assert sum(r["failed"] for r in results) == 0
    assert allowed == 100  # 0.21 / 0.0021: every dollar used, none over
    assert sum(r["blocked"] for r in results) == 4 * 4 * 12 - 100
    ledger = open_ledger(shared_url, 2000)
    try:
        figures = ledger.figures(TOTAL_KEY, time.time())
    finally:
        ledger.close()
    assert figures.spent == 210_000_000 == sum(r["charged"] for r in results)
    assert figures.reserved == 0


def test_cheaper_actuals_never_overrun_and_every_charge_lands_once(worker, shared_url):
    results = _spend(worker, shared_url, processes=4, threads=3, calls=20, mode="cheaper")
    assert sum(r["failed"] for r in results) == 0
    ledger = open_ledger(shared_url, 2000)
    try:
        figures = ledger.figures(TOTAL_KEY, time.time())
    finally:
        ledger.close()
    assert figures.spent == sum(r["charged"] for r in results)  # nothing lost, nothing double counted
    assert figures.spent <= 210_000_000
    assert figures.reserved == 0
    assert sum(r["allowed"] for r in results) > 100  # cheaper calls leave room for more of them


def test_a_killed_process_reservation_expires(worker, shared_url):
    child = subprocess.Popen([sys.executable, worker, shared_url, "1", "1", "hold", "30"], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    ledger = open_ledger(shared_url, 2000)
    now = time.time()
    assert ledger.figures(TOTAL_KEY, now).reserved == ESTIMATE  # still held just after the kill
    settings = config.load({"GENOPS_BUDGETS": "global=0.00315/total"})  # 1.5 estimates: no room for a second call
    pricer = lambda p, m, u, b: Price((u.input_tokens * 1 + u.output_tokens * 2) / 1e6)
    request = CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400])
    clock = [now]
    governor = EnforcingGovernor(settings, ledger=ledger, clock=lambda: clock[0], pricer=pricer)
    try:
        if shared_url.startswith("sqlite"):
            pass  # one host: the next decision reclaims the reservation of a holder that is gone
        else:
            assert governor.decide(request, {}).decision.reason_code == "BUDGET_EXCEEDED"
            clock[0] = now + 31  # past the dead process's 30 s reservation
            assert ledger.figures(TOTAL_KEY, clock[0]).reserved == 0
        ticket = governor.decide(request, {})
        assert ticket.decision.result == "ALLOWED" and ticket.state is not None
        governor.settle(ticket, 0.0021, True)
        assert ledger.figures(TOTAL_KEY, clock[0]).spent == ESTIMATE
    finally:
        governor.close()


def _forked_spender(governor: EnforcingGovernor, calls: int) -> None:
    request = CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400])
    for _ in range(calls):
        ticket = governor.decide(request, {})
        if ticket.decision.blocks:
            os._exit(3)
        governor.settle(ticket, 0.0021, True)
    os._exit(0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_forked_children_get_their_own_connections(shared_url):
    ledger = open_ledger(shared_url, 5000)
    settings = config.load({"GENOPS_BUDGETS": "global=1/total", "GENOPS_FAIL_MODE": "closed"})
    pricer = lambda p, m, u, b: Price((u.input_tokens * 1 + u.output_tokens * 2) / 1e6)
    governor = EnforcingGovernor(settings, ledger=ledger, pricer=pricer)
    _forked_spender_in_parent = governor.decide(CallRequest("openai", "chat", "test-model", max_output_tokens=1000, prompt_text=lambda: ["x" * 400]), {})
    governor.settle(_forked_spender_in_parent, 0.0021, True)  # the parent's connection is open now
    parent_connection = getattr(ledger, "_conn", None) or ledger._client
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_forked_spender, args=(governor, 10)) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0, 0]
    assert (getattr(ledger, "_conn", None) or ledger._client) is parent_connection  # the parent keeps its own
    assert ledger.figures(TOTAL_KEY, time.time()).spent == 31 * ESTIMATE
    governor.close()
