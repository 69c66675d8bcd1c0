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
BASELINE = "redis, before: through redis-py `Script` objects"
WHERE_THE_TIME_GOES = """Where the time goes (profiled on this machine with cProfile, `time.process_time` and the server's
`INFO cpu`/`commandstats`):
- In one process, without contention, a decide + settle on Redis cost the client about 170 µs of
  CPU through the ledger's wire (`governance/ledger/redis_wire.py`: the packed `EVALSHA` on a
  connection of its own) against about 210 µs through redis-py's `Script` objects: GenOps' own
  decision and settlement take about 60 µs, each round trip's packing, system calls and parsing the
  rest. The server spent about 28 µs per script.
- With 16 processes on 2 CPUs the clients' CPU per decision is well above that (the table's
  "clients" column): every round trip blocks, and with eight runnable processes per CPU each
  wake-up is a context switch onto cold caches. The rate then depends on the host's scheduling
  and load more than on Redis or the client library: compare the runs with 8 and 4 processes
  and the all-refused run (one round trip per decision) in the second table.
- On hosts where each process has a CPU of its own, the bound is the server's CPU per decision
  (the "server" column): one redis-server then serves 1,000,000 / that many µs decisions per
  second (estimated from its CPU, not measured here).
"""


def _pricer(provider: str, model: Any, usage: Any, base: Any) -> Price:
    return Price(usage.output_tokens * 10 / 1e6)


def _through_redis_py_scripts(ledger: Any) -> None:
    """The baseline: the same scripts sent through redis-py's ``Script`` objects (how the ledger sent them before)."""
    from genops_autoinstrument.governance.ledger.redis import _SCRIPTS

    client = ledger._redis()
    scripts = {name: client.register_script(body) for name, body in _SCRIPTS.items()}
    ledger._run = lambda name, keys, args: scripts[name](keys=keys, args=args)


def _worker(args: tuple[str, float, int, Any, Any, bool]) -> None:
    url, budget, calls, start, results, baseline = args
    settings = config.load({"GENOPS_BUDGETS": f"global={budget!r}/total", "GENOPS_LEDGER_URL": url, "GENOPS_LEDGER_TIMEOUT_MS": "5000", "GENOPS_FAIL_MODE": "closed"})
    governor = EnforcingGovernor(settings, pricer=_pricer)
    if baseline:
        _through_redis_py_scripts(governor.ledger)
    request = CallRequest("openai", "chat", "gpt-4o", max_output_tokens=256, prompt_text=lambda: ["Summarise this paragraph please."])
    allowed = refused = failed = charged = 0
    start.wait()
    cpu = time.process_time()
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
    cpu = time.process_time() - cpu
    failures = governor.ledger_failures
    governor.close()
    results.put((allowed, refused, failed, charged, failures, cpu))


def _empty(url: str) -> None:
    """Start each run from an empty ledger (the runs share one server, or one file)."""
    if url.startswith("sqlite:///"):
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(url[len("sqlite:///") :] + suffix):
                os.remove(url[len("sqlite:///") :] + suffix)
    elif url.startswith("redis://"):
        import redis

        client = redis.Redis.from_url(url)
        try:
            client.flushdb()
        finally:
            client.close()


def _server_cpu(url: str) -> float | None:
    """The redis-server's CPU seconds so far (user + system), or None for other ledgers."""
    if not url.startswith("redis://"):
        return None
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


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


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate; every run's rate is kept in ``all_rates``."""
    ordered = sorted(runs, key=lambda r: r["per_second"])
    return {**ordered[len(ordered) // 2], "all_rates": [r["per_second"] for r in runs], "all_sound": all(map(_sound, runs))}


def _sound(r: dict[str, Any]) -> bool:
    """Nothing lost or counted twice, and at most one reservation of overspend."""
    return r["charged"] == r["ledger_spent"] and r["overspend"] <= r["reservation"]


def _columns(r: dict[str, Any]) -> tuple[str, str, str]:
    """A run's CPU per decision, charged-equals-ledger and overspend cells."""
    cpu = f"{r['client_cpu_us']:.0f} / " + ("-" if r["server_cpu_us"] is None else f"{r['server_cpu_us']:.0f}")
    equal = "yes" if r["charged"] == r["ledger_spent"] else f"NO ({r['charged']} vs {r['ledger_spent']})"
    over = f"{r['overspend']} n$ ({'ok' if r['overspend'] <= r['reservation'] else 'NOT ok'})"
    return cpu, equal, over


def run(url: str, processes: int, calls: int, refuse_all: bool = False, baseline: bool = False) -> dict[str, Any]:
    """All processes start together behind a barrier; wall time from the start to the last result.

    ``refuse_all``: a budget smaller than one call, so every decision is one round trip and no settlement.
    ``baseline``: Redis scripts sent through redis-py's ``Script`` objects instead of the ledger's wire.
    """
    budget = round(ESTIMATE / 2 if refuse_all else ESTIMATE * processes * calls / 2, 9)
    _empty(url)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [context.Process(target=_worker, args=((url, budget, calls, start, results, baseline),)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    server_cpu = _server_cpu(url)
    start.wait()
    began = time.perf_counter()
    totals = [0, 0, 0, 0, 0, 0.0]
    for _ in workers:
        for i, value in enumerate(results.get(timeout=900)):
            totals[i] += value
    elapsed = time.perf_counter() - began
    if server_cpu is not None:
        server_cpu = _server_cpu(url) - server_cpu
    for worker in workers:
        worker.join()
    ledger = open_ledger(url, 5000)
    try:
        figures = ledger.figures(TOTAL_KEY, time.time())
    finally:
        ledger.close()
    allowed, refused, failed, charged, failures, client_cpu = totals
    decisions = allowed + refused + failed
    limit = round(budget * 1e9)
    return {
        "decisions": decisions,
        "client_cpu_us": client_cpu / decisions * 1e6,
        "server_cpu_us": None if server_cpu is None else server_cpu / decisions * 1e6,
        "allowed": allowed,
        "refused": refused,
        "failed": failed + failures,
        "seconds": elapsed,
        "per_second": decisions / elapsed,
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
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case; the table shows the median run")
    parser.add_argument("--no-sweep", action="store_true", help="skip the Redis runs with fewer processes and the all-refused bound")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    folder = tempfile.mkdtemp(prefix="genops-fleet-")
    redis = None if args.no_redis else _redis_server(folder)
    cases = []
    if redis is not None:
        cases.append(("redis (one loopback redis-server)", redis[1]))
        cases.append((BASELINE, redis[1]))
    if not args.no_sqlite:
        cases.append(("sqlite (one file)", "sqlite:///" + os.path.join(folder, "fleet.db")))
    rows = []
    sweep: list[tuple[str, dict[str, Any]]] = []
    ceiling = None
    try:
        trials: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in cases}
        for _ in range(args.repeats):  # interleaved, so a change in the host's load hits every case alike
            for name, url in cases:
                trials[name].append(run(url, args.processes, args.calls, baseline=name == BASELINE))
        rows = [(name, _median_run(trials[name])) for name, _ in cases]
        if redis is not None:
            ceiling = round_trip_ceiling(redis[1], args.processes, args.calls * 2)
            if not args.no_sweep:
                total = args.processes * args.calls
                sweep.append((f"{args.processes}, every call refused (one round trip each)", run(redis[1], args.processes, args.calls, refuse_all=True)))
                for fewer in (args.processes // 2, args.processes // 4):
                    if fewer >= 1:
                        sweep.append((f"{fewer}, same total calls", run(redis[1], fewer, total // fewer)))
    finally:
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(10)
    lines = [
        "| ledger | processes | decisions | allowed | refused | ledger failures | seconds | decisions/s | CPU µs per decision: clients / server | charged = ledger total | left reserved | overspend (≤ 1 reservation) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    verdicts = []
    for name, r in rows:
        cpu, equal, over = _columns(r)
        lines.append(
            f"| {name} | {args.processes} | {r['decisions']:,} | {r['allowed']:,} | {r['refused']:,} | {r['failed']} | {r['seconds']:.2f} "
            f"| {r['per_second']:,.0f} | {cpu} | {equal} | {r['ledger_reserved']} | {over} |"
        )
        if len(r["all_rates"]) > 1:
            verdicts.append(f"- {name}: runs at {', '.join(f'{x:,.0f}' for x in r['all_rates'])} decisions/s; every run charged = ledger total and overspend ≤ 1 reservation: {'yes' if r['all_sound'] else 'NO'}")
        if name == BASELINE:
            verdicts.append(f"- Before (redis-py `Script` objects), same run: {r['per_second']:,.0f} decisions/s; the ledger's wire is {rows[0][1]['per_second'] / r['per_second']:.2f}x that")
        elif name.startswith("redis"):
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
    if sweep:
        text += (
            "\nRedis on this host with fewer processes, and with every decision a single round trip:\n\n"
            "| processes | decisions | allowed | decisions/s | CPU µs per decision: clients / server | charged = ledger total | overspend (≤ 1 reservation) |\n"
            "|---|---:|---:|---:|---:|---|---|\n"
        )
        for name, r in sweep:
            cpu, equal, over = _columns(r)
            text += f"| {name} | {r['decisions']:,} | {r['allowed']:,} | {r['per_second']:,.0f} | {cpu} | {equal} | {over} |\n"
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
            f" `decide` + `settle`, {args.repeats} runs of each case interleaved (the table shows the median run),"
            " against one shared `global` total budget sized for half of all calls;"
            f" every call costs exactly its ${ESTIMATE} estimate; `GENOPS_FAIL_MODE=closed`, ledger timeout 5 s."
            f" Machine: {os.cpu_count()} CPU(s), shared with the ledger server, so with 16 processes"
            " the figure is bounded by CPU, not by the ledger. " + conditions + "\n\n" + text + "\n" + WHERE_THE_TIME_GOES
        )


if __name__ == "__main__":
    main()
