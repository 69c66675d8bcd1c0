"""Fleet throughput: budget decisions per second, 16 processes sharing one budget on one ledger.

    python benchmarks/bench_fleet_decisions.py [--processes 16] [--calls 1500] [--no-redis] [--no-sqlite]

Each process runs ``decide`` then ``settle`` in a loop for a fixed number of calls against one
shared ``global`` total budget, sized so that about half of all calls fit: the budget is used up
mid-run and the rest are refused (a refusal is a decision too). Every call costs exactly its
estimate. Reported per ledger (one ``redis-server`` on a free loopback port, started here; one
SQLite file): decisions per second of all processes together, that the spend the processes
charged equals the ledger's total (nothing lost, nothing counted twice, nothing left reserved),
and the overspend, which must be at most one reservation. Goal: 5,000 decisions/s on Redis.
Writes ``benchmarks/results/fleet_decisions.md`` too.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_decision import _redis_server  # noqa: E402

from genops_autoinstrument import config  # noqa: E402
from genops_autoinstrument.engine.call import CallRequest  # noqa: E402
from genops_autoinstrument.governance.enforcing import EnforcingGovernor  # noqa: E402
from genops_autoinstrument.governance.ledger.factory import open_ledger  # noqa: E402
from genops_autoinstrument.pricing.prices import Price  # noqa: E402

ESTIMATE = 0.00256  # USD: max_output_tokens=256 at $10/M (the prompt is priced at $0)
TOTAL_KEY = "budget|global|*|total|total"
GOAL_REDIS = 5000.0
WHERE_THE_TIME_GOES = """Where the time goes (profiled on this machine, one process, cProfile and `time.process_time`):
GenOps' own decision and settlement take about 40 µs of CPU per call; each Redis round trip costs
the redis-py client about 70-100 µs of CPU with hiredis installed (130-170 µs without), and an
allowed call makes two (reserve, settle). Past the alert threshold a
settlement no longer asks the ledger again whether the alert was raised (a third round trip per call
before). The server itself spent about 45 µs per script. With 16 processes on 2 CPUs each process's
CPU per decision grows about fourfold (context switches, caches), so the figure is bounded by the
clients' CPU on this host; the PING line above is the same processes' ceiling for any Redis client.
"""


def _pricer(provider: str, model: Any, usage: Any, base: Any) -> Price:
    return Price(usage.output_tokens * 10 / 1e6)


def _worker(args: tuple[str, float, int, Any, Any]) -> None:
    url, budget, calls, start, results = args
    settings = config.load({"GENOPS_BUDGETS": f"global={budget!r}/total", "GENOPS_LEDGER_URL": url, "GENOPS_LEDGER_TIMEOUT_MS": "5000", "GENOPS_FAIL_MODE": "closed"})
    governor = EnforcingGovernor(settings, pricer=_pricer)
    request = CallRequest("openai", "chat", "gpt-4o", max_output_tokens=256, prompt_text=lambda: ["Summarise this paragraph please."])
    allowed = refused = failed = charged = 0
    start.wait()
    for _ in range(calls):
        ticket = governor.decide(request, {})
        if ticket.decision.blocks:
            if ticket.decision.reason_code == "BUDGET_RESERVATION_FAILED":
                failed += 1
            else:
                refused += 1
            continue
        governor.settle(ticket, ESTIMATE, True)
        allowed += 1
        charged += round(ESTIMATE * 1e9)
    failures = governor.ledger_failures
    governor.close()
    results.put((allowed, refused, failed, charged, failures))


def _pinger(args: tuple[str, int, Any, Any]) -> None:
    url, calls, start, results = args
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    start.wait()
    for _ in range(calls):
        client.ping()
    client.close()
    results.put(calls)


def round_trip_ceiling(url: str, processes: int, calls: int) -> float:
    """Bare PINGs per second from the same number of processes: what this machine allows any client."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [context.Process(target=_pinger, args=((url, calls, start, results),)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    done = sum(results.get(timeout=900) for _ in workers)
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    return done / elapsed


def run(url: str, processes: int, calls: int) -> dict[str, Any]:
    """All processes start together behind a barrier; wall time from the start to the last result."""
    budget = round(ESTIMATE * processes * calls / 2, 9)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [context.Process(target=_worker, args=((url, budget, calls, start, results),)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    totals = [0, 0, 0, 0, 0]
    for _ in workers:
        for i, value in enumerate(results.get(timeout=900)):
            totals[i] += value
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    ledger = open_ledger(url, 5000)
    try:
        figures = ledger.figures(TOTAL_KEY, time.time())
    finally:
        ledger.close()
    allowed, refused, failed, charged, failures = totals
    limit = round(budget * 1e9)
    return {
        "decisions": allowed + refused + failed,
        "allowed": allowed,
        "refused": refused,
        "failed": failed + failures,
        "seconds": elapsed,
        "per_second": (allowed + refused + failed) / elapsed,
        "charged": charged,
        "ledger_spent": figures.spent,
        "ledger_reserved": figures.reserved,
        "overspend": max(0, figures.spent - limit),
        "reservation": round(ESTIMATE * 1e9),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--calls", type=int, default=1500, help="calls per process")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    folder = tempfile.mkdtemp(prefix="genops-fleet-")
    redis = None if args.no_redis else _redis_server(folder)
    cases = []
    if redis is not None:
        cases.append(("redis (one loopback redis-server)", redis[1]))
    if not args.no_sqlite:
        cases.append(("sqlite (one file)", "sqlite:///" + os.path.join(folder, "fleet.db")))
    rows = []
    ceiling = None
    try:
        for name, url in cases:
            rows.append((name, run(url, args.processes, args.calls)))
        if redis is not None:
            ceiling = round_trip_ceiling(redis[1], args.processes, args.calls * 2)
    finally:
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(10)
    lines = [
        "| ledger | processes | decisions | allowed | refused | ledger failures | seconds | decisions/s | charged = ledger total | left reserved | overspend (≤ 1 reservation) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    verdicts = []
    for name, r in rows:
        equal = "yes" if r["charged"] == r["ledger_spent"] else f"NO ({r['charged']} vs {r['ledger_spent']})"
        over = f"{r['overspend']} n$ ({'ok' if r['overspend'] <= r['reservation'] else 'NOT ok'})"
        lines.append(
            f"| {name} | {args.processes} | {r['decisions']:,} | {r['allowed']:,} | {r['refused']:,} | {r['failed']} | {r['seconds']:.2f} "
            f"| {r['per_second']:,.0f} | {equal} | {r['ledger_reserved']} | {over} |"
        )
        if name.startswith("redis"):
            verdicts.append(f"- Redis: {r['per_second']:,.0f} decisions/s with {args.processes} processes (goal {GOAL_REDIS:,.0f}/s: {'met' if r['per_second'] >= GOAL_REDIS else 'NOT met'})")
            if ceiling is not None:
                # An allowed call is two round trips (reserve, settle), a refused one is one.
                trips = (2 * r["allowed"] + r["refused"] + r["failed"]) / max(1, r["decisions"])
                verdicts.append(
                    f"- The same {args.processes} processes sending bare PINGs: {ceiling:,.0f} round trips/s, so at most"
                    f" {ceiling / trips:,.0f} decisions/s at {trips:.2f} round trips each; the decisions reach"
                    f" {100 * r['per_second'] * trips / ceiling:.0f}% of what the machine allows any Redis client"
                )
    if redis is None and not args.no_redis:
        verdicts.append("- Redis: not measured (no redis-server binary)")
    text = "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n"
    try:
        from importlib.metadata import version

        hiredis = f"hiredis {version('hiredis')}"
    except Exception:
        hiredis = "no hiredis"
    conditions = f"redis-py with {hiredis}; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end."
    print(text)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "fleet_decisions.md"), "w") as handle:
        handle.write(
            "# Fleet budget decisions (benchmarks/bench_fleet_decisions.py)\n\n"
            f"{args.processes} processes (spawned, started together behind a barrier), {args.calls} calls each of"
            " `decide` + `settle` against one shared `global` total budget sized for half of all calls;"
            f" every call costs exactly its ${ESTIMATE} estimate; `GENOPS_FAIL_MODE=closed`, ledger timeout 5 s."
            f" Machine: {os.cpu_count()} CPU(s), shared with the ledger server, so with 16 processes"
            " the figure is bounded by CPU, not by the ledger. " + conditions + "\n\n" + text + "\n" + WHERE_THE_TIME_GOES
        )


if __name__ == "__main__":
    main()
