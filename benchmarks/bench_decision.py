"""Added latency of a GenOps policy decision, per ledger, with one process and with four contending.

    python benchmarks/bench_decision.py [--calls 3000] [--processes 4]

Measures ``EnforcingGovernor.decide`` (what a request waits for before it is sent) and
``decide + settle`` (all the governance work of one call), next to the baseline of the no-op
governor in the same run. Budgets ``team=50/day;global=2000/month`` (never exhausted), optionally
with the rate limit ``team=1000000/min``. The goal: under 100 µs median for a decision with SQLite.
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
from genops_autoinstrument.enforcement import EnforcingGovernor  # noqa: E402
from genops_autoinstrument.governance import Governor  # noqa: E402
from genops_autoinstrument.pricing import Price  # noqa: E402
from genops_autoinstrument.recording import CallRequest  # noqa: E402

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


def contended(ledger_url: str | None, rate: bool, calls: int, processes: int) -> tuple[list[float], list[float]]:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(processes)
    results = context.Queue()
    workers = [context.Process(target=_worker, args=((ledger_url, rate, calls, start, results),)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    decide: list[float] = []
    total: list[float] = []
    for _ in workers:
        d, t = results.get(timeout=600)
        decide += d
        total += t
    for worker in workers:
        worker.join()
    return decide, total


def _stats(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="measured calls per process")
    parser.add_argument("--processes", type=int, default=4, help="processes in the contended runs")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="genops-bench-")
    rows = []
    cases = [("baseline (no governor)", None, False)]
    cases += [("memory://", "memory://", False), ("memory:// + rate limit", "memory://", True)]
    cases += [("sqlite", "sqlite:///" + os.path.join(folder, "a.db"), False), ("sqlite + rate limit", "sqlite:///" + os.path.join(folder, "b.db"), True)]
    baseline = None
    for name, url, rate in cases:
        for processes in (1, args.processes):
            if processes == 1:
                decide, total = measure(url, rate, args.calls)
            else:
                decide, total = contended(url, rate, args.calls, processes)
            d_med, d_p99 = _stats(decide)
            t_med, t_p99 = _stats(total)
            if baseline is None:
                baseline = d_med
            rows.append((name, processes, d_med, d_p99, t_med, t_p99, d_med / baseline if baseline else float("nan")))
    print(f"{'ledger':<24} {'procs':>5} {'decide med µs':>14} {'decide p99 µs':>14} {'+settle med µs':>15} {'+settle p99 µs':>15} {'× baseline':>11}")
    for name, processes, d_med, d_p99, t_med, t_p99, ratio in rows:
        print(f"{name:<24} {processes:>5} {d_med:>14.1f} {d_p99:>14.1f} {t_med:>15.1f} {t_p99:>15.1f} {ratio:>11.0f}")
    sqlite_one = next(r for r in rows if r[0] == "sqlite" and r[1] == 1)
    print(f"\ngoal: SQLite decision median under 100 µs (one process): {'met' if sqlite_one[2] < 100 else 'NOT met'} ({sqlite_one[2]:.1f} µs)")


if __name__ == "__main__":
    main()
