"""Added latency of a GenOps policy decision, per ledger, with one process and with four contending.

    python benchmarks/bench_decision.py [--calls 3000] [--processes 4 8] [--no-redis]

Measures ``EnforcingGovernor.decide`` (what a request waits for before it is sent) and
``decide + settle`` (all the governance work of one call), next to the baseline of the no-op
governor in the same run. Budgets ``team=50/day;global=2000/month`` (never exhausted), optionally
with the rate limit ``team=1000000/min``. Goals: under 100 µs median for a decision with SQLite;
under 0.5 ms median per reservation on loopback Redis. Also reports the throughput of N processes
hammering one budget (decisions + settlements per second, all processes together). A
``redis-server`` on a free loopback port is started for the Redis cases when the binary exists.
Writes the table to ``benchmarks/results/decision.md`` too.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from genops_autoinstrument import config  # noqa: E402
from genops_autoinstrument.governance.enforcing import EnforcingGovernor  # noqa: E402
from genops_autoinstrument.governance.governor import Governor  # noqa: E402
from genops_autoinstrument.pricing.prices import Price  # noqa: E402
from genops_autoinstrument.engine.call import CallRequest  # noqa: E402

ATTRIBUTION = {"genops.team": "search"}


def _pricer(provider: str, model: Any, usage: Any, base: Any) -> Price:
    return Price((usage.input_tokens * 2.5 + usage.output_tokens * 10) / 1e6)


def _governor(ledger_url: str | None, rate: bool) -> Governor:
    if ledger_url is None:
        return Governor()
    env = {"GENOPS_BUDGETS": "team=50/day;global=2000/month", "GENOPS_LEDGER_URL": ledger_url, "GENOPS_LEDGER_TIMEOUT_MS": "5000"}
    if rate:
        env["GENOPS_RATE_LIMITS"] = "team=1000000/min"
    return EnforcingGovernor(config.load(env), pricer=_pricer)


def measure(ledger_url: str | None, rate: bool, calls: int, start: Any = None) -> tuple[list[float], list[float]]:
    """Per-call seconds for decide, and for decide + settle."""
    governor = _governor(ledger_url, rate)
    request = CallRequest("openai", "chat", "gpt-4o", max_output_tokens=256, prompt_text=lambda: ["Summarise this paragraph please. " * 20])
    for _ in range(200):  # warm up: connection, schema, statement cache, price cache
        governor.settle(governor.decide(request, ATTRIBUTION), 0.001, True)
    if start is not None:
        start.wait()
    decide, total = [], []
    clock = time.perf_counter
    for _ in range(calls):
        t0 = clock()
        ticket = governor.decide(request, ATTRIBUTION)
        t1 = clock()
        governor.settle(ticket, 0.001, True)
        t2 = clock()
        decide.append(t1 - t0)
        total.append(t2 - t0)
    if isinstance(governor, EnforcingGovernor):
        governor.close()
    return decide, total


def _worker(args: tuple[str | None, bool, int, Any, Any]) -> None:
    ledger_url, rate, calls, start, results = args
    results.put(measure(ledger_url, rate, calls, start))


def contended(ledger_url: str | None, rate: bool, calls: int, processes: int) -> tuple[list[float], list[float], float]:
    """Per-call samples of every process, and the wall time from the common start to the last result."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [context.Process(target=_worker, args=((ledger_url, rate, calls, start, results),)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    start.wait()
    began = time.perf_counter()
    decide: list[float] = []
    total: list[float] = []
    for _ in workers:
        d, t = results.get(timeout=600)
        decide += d
        total += t
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    return decide, total, elapsed


def _redis_server(folder: str) -> tuple[Any, str] | None:
    """A throw-away redis-server on a free loopback port, or None when the binary is missing."""
    import shutil
    import socket
    import subprocess

    binary = shutil.which("redis-server")
    if binary is None:
        return None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    return None


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="measured calls per process")
    parser.add_argument("--processes", type=int, nargs="+", default=[4, 8], help="process counts of the contended runs")
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis cases")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="genops-bench-")
    redis = None if args.no_redis else _redis_server(folder)
    rows = []
    cases = [("baseline (no governor)", None, False)]
    cases += [("memory://", "memory://", False), ("memory:// + rate limit", "memory://", True)]
    cases += [("sqlite", "sqlite:///" + os.path.join(folder, "a.db"), False), ("sqlite + rate limit", "sqlite:///" + os.path.join(folder, "b.db"), True)]
    if redis is not None:
        cases += [("redis (loopback)", redis[1], False), ("redis + rate limit", redis[1], True)]
    baseline = None
    try:
        for name, url, rate in cases:
            for processes in [1, *args.processes]:
                if processes > 1 and (url is None or url.startswith("memory")):
                    continue  # nothing is shared between processes: the one-process figure says it all
                if processes == 1:
                    began = time.perf_counter()
                    decide, total = measure(url, rate, args.calls)
                    elapsed = time.perf_counter() - began
                else:
                    decide, total, elapsed = contended(url, rate, args.calls, processes)
                d_med, d_p99 = _stats(decide)
                t_med, t_p99 = _stats(total)
                if baseline is None:
                    baseline = d_med
                rows.append((name, processes, d_med, d_p99, t_med, t_p99, len(total) / elapsed))
    finally:
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(10)
    lines = [
        "| ledger | processes | decide median µs | decide p99 µs | decide+settle median µs | decide+settle p99 µs | calls/s, all processes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, processes, d_med, d_p99, t_med, t_p99, throughput in rows:
        lines.append(f"| {name} | {processes} | {d_med:.1f} | {d_p99:.1f} | {t_med:.1f} | {t_p99:.1f} | {throughput:,.0f} |")
    sqlite_one = next(r for r in rows if r[0] == "sqlite" and r[1] == 1)
    verdicts = [f"- SQLite decision median, one process: {sqlite_one[2]:.1f} µs (goal < 100 µs: {'met' if sqlite_one[2] < 100 else 'NOT met'})"]
    redis_one = next((r for r in rows if r[0] == "redis (loopback)" and r[1] == 1), None)
    if redis_one is not None:
        verdicts.append(f"- Redis reservation median, one process: {redis_one[2]:.1f} µs (goal < 500 µs: {'met' if redis_one[2] < 500 else 'NOT met'})")
    else:
        verdicts.append("- Redis: not measured (no redis-server binary, or --no-redis)")
    verdicts.append(f"- baseline (no governor): {baseline:.2f} µs")
    text = "\n".join(lines) + "\n\n" + "\n".join(verdicts) + "\n"
    print(text)
    results = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "decision.md")
    with open(results, "w") as handle:
        handle.write(
            "# Policy decision latency (benchmarks/bench_decision.py)\n\n"
            f"{args.calls} measured calls per process after 200 warm-up calls; budgets `team=50/day;global=2000/month`"
            " (never exhausted), optional rate limit `team=1000000/min`; wall clock (`perf_counter`) per call;"
            " contended runs start together behind a barrier. Shared 2-core machine: with more processes than"
            " cores, p99 is dominated by waiting for a core.\n\n" + text
        )


if __name__ == "__main__":
    main()
