"""The decision path before and after the ledger hardening (issue 14), side by side in one run.

    python benchmarks/bench_decision_before_after.py [--baseline REF] [--calls 2000] [--rounds 5]

The baseline tree (default: the last commit before the Redis and SQLite ledger hardening) is
extracted with ``git archive`` into a temporary folder; each round runs, in shuffled order, one
fresh process per (tree, ledger) that imports *that* tree's ``benchmarks/bench_decision.py`` and
calls its ``measure`` (warm-up, then ``--calls`` decisions, each followed by its settlement), on a
new SQLite file or a flushed database of one loopback ``redis-server``. Reports the medians over
rounds of each process's median and p99, and the after/before ratio. Writes
``benchmarks/results/decision_before_after.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_decision import _redis_server  # noqa: E402

BASELINE = "b393b49^"  # the parent of "Redis ledger: idempotent tickets, retried settlements, short renewed leases"

# Run in a fresh interpreter with one tree first on sys.path: that tree's GenOps and its benchmark.
DRIVER = r"""
import importlib.util, json, statistics, sys
tree, url, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, tree)
spec = importlib.util.spec_from_file_location("bench_decision_of_tree", tree + "/benchmarks/bench_decision.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
import genops_autoinstrument
assert genops_autoinstrument.__file__.startswith(tree), genops_autoinstrument.__file__
if url.startswith("redis"):
    import redis
    redis.Redis.from_url(url).flushdb()
decide, total = bench.measure(url, False, calls)
def stats(samples):
    ordered = sorted(samples)
    return [statistics.median(ordered) * 1e6, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e6]
print(json.dumps({"decide": stats(decide), "total": stats(total)}))
"""


def extract(ref: str, folder: Path) -> Path:
    """The tree of ``ref`` (a commit of this repository) in ``folder``."""
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_once(tree: Path, url: str, calls: int) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env = {name: value for name, value in env.items() if not name.startswith("GENOPS_")}
    out = subprocess.run([sys.executable, "-c", DRIVER, str(tree), url, str(calls)], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="git revision of the 'before' tree")
    parser.add_argument("--calls", type=int, default=2000, help="measured decisions per process")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        trees = {"before": extract(args.baseline, Path(folder) / "before"), "after": ROOT}
        redis = _redis_server(folder)
        ledgers = {"sqlite": None, "redis": redis[1] if redis is not None else None}
        if redis is None:
            del ledgers["redis"]
        samples: dict[tuple[str, str], list[dict[str, list[float]]]] = {}
        try:
            for round_number in range(args.rounds):
                cases = [(tree, ledger) for tree in trees for ledger in ledgers]
                random.shuffle(cases)
                for tree, ledger in cases:
                    url = ledgers[ledger] or f"sqlite:///{folder}/{tree}-{ledger}-{round_number}.db"
                    samples.setdefault((tree, ledger), []).append(run_once(trees[tree], url, args.calls))
        finally:
            if redis is not None:
                redis[0].terminate()
                redis[0].wait(10)
    report(samples, args)


def report(samples: dict[tuple[str, str], list[dict[str, list[float]]]], args: argparse.Namespace) -> None:
    def median_of(tree: str, ledger: str, path: str, index: int) -> float:
        return statistics.median(run[path][index] for run in samples[(tree, ledger)])

    lines = [
        "# Decision path before and after the ledger hardening (benchmarks/bench_decision_before_after.py)",
        "",
        f"Before: `{args.baseline}`; after: the working tree. One process per (tree, ledger) and round, "
        f"{args.rounds} interleaved rounds in shuffled order, {args.calls} measured decisions each after 200 "
        "warm-up calls; budgets `team=50/day;global=2000/month`; medians over rounds of each process's "
        "median and p99. Shared, noisy 2-core machine.",
        "",
        "| ledger | path | before median µs | after median µs | ratio | before p99 µs | after p99 µs | ratio |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for ledger in sorted({ledger for _, ledger in samples}):
        for path, label in (("decide", "decide"), ("total", "decide + settle")):
            b_med, a_med = median_of("before", ledger, path, 0), median_of("after", ledger, path, 0)
            b_p99, a_p99 = median_of("before", ledger, path, 1), median_of("after", ledger, path, 1)
            lines.append(f"| {ledger} | {label} | {b_med:.1f} | {a_med:.1f} | {a_med / b_med:.2f}× | {b_p99:.1f} | {a_p99:.1f} | {a_p99 / b_p99:.2f}× |")
    text = "\n".join(lines) + "\n"
    print(text)
    results = ROOT / "benchmarks" / "results" / "decision_before_after.md"
    results.write_text(text)


if __name__ == "__main__":
    main()
