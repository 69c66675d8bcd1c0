"""Shared helpers of the benchmarks: production-like telemetry that exports nowhere, robust stats.

Benchmarks compare variants side by side in one process, in interleaved rounds (the order shuffled
each round), and report medians of per-round numbers and medians of per-round *paired*
differences, so that a noisy neighbour or CPU frequency drift hits every variant alike.
"""

from __future__ import annotations

import gc
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Sequence

RESULTS = Path(__file__).resolve().parent / "results"


def noop_telemetry(genops: bool = False) -> tuple[Any, Any]:
    """(TracerProvider, MeterProvider) set up as in production, with exporters that drop everything.

    Spans go through a ``BatchSpanProcessor`` (the default of ``genops-run``) and metrics through a
    ``PeriodicExportingMetricReader``, so the cost measured is the real recording path, not an
    exporter's network I/O. ``genops=True``: the tracer provider as ``genops-run`` sets it up, with
    GenOps' span-queue flusher first (so GenOps completes its spans off the application's thread).
    """
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class NoopSpanExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    class NoopMetricExporter(MetricExporter):
        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            return None

    tracer_provider = TracerProvider()
    if genops:
        try:
            from genops_autoinstrument.engine.deferred import add_span_queue_flusher
        except ImportError:  # a GenOps version that ends its spans on the application thread
            pass
        else:
            add_span_queue_flusher(tracer_provider)
    tracer_provider.add_span_processor(BatchSpanProcessor(NoopSpanExporter()))
    reader = PeriodicExportingMetricReader(NoopMetricExporter(), export_interval_millis=60_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    return tracer_provider, meter_provider


#: The clock of the measurements. CPU time of the calling thread (the application's thread) does
#: not count the time the thread waits for a core, which on a small shared machine is most of the
#: noise; ``use_wall_clock()`` switches to ``perf_counter`` for an idle machine.
clock: Callable[[], float] = time.thread_time


def use_wall_clock() -> None:
    global clock
    clock = time.perf_counter


def timed(batch: Callable[[], None]) -> float:
    """Seconds one call of ``batch`` takes on :data:`clock`, after a garbage collection (GC stays enabled)."""
    gc.collect()
    start = clock()
    batch()
    return clock() - start


def timed_with_process(batch: Callable[[], None], settle: Callable[[], None] | None = None) -> tuple[float, float]:
    """(seconds on :data:`clock`, CPU seconds of the whole process) for one call of ``batch``.

    ``settle`` runs after the application clock stops and before the process clock does: it
    finishes work an instrumentation deferred to a background thread (GenOps' metric queue), so
    that work is counted in the process CPU of this batch, not in a later one.
    """
    gc.collect()
    start_process = time.process_time()
    start = clock()
    batch()
    elapsed = clock() - start
    if settle is not None:
        settle()
    return elapsed, time.process_time() - start_process


@dataclass
class Series:
    """Per-round values of one measurement, for each variant."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, variant: str, value: float) -> None:
        self.values.setdefault(variant, []).append(value)

    def median(self, variant: str) -> float:
        return statistics.median(self.values[variant])

    def paired_delta(self, variant: str, baseline: str) -> float:
        """Median over rounds of (variant - baseline) measured in the same round."""
        return statistics.median(v - b for v, b in zip(self.values[variant], self.values[baseline]))

    def spread(self, variant: str) -> float:
        """Interquartile range over rounds, as a noise indicator."""
        values = sorted(self.values[variant])
        if len(values) < 4:
            return 0.0
        quartiles = statistics.quantiles(values, n=4)
        return quartiles[2] - quartiles[0]


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def environment(packages: Sequence[str]) -> str:
    """One Markdown line describing where the numbers come from."""
    import os

    parts = [f"Python {platform.python_version()}", f"{platform.system()} {platform.machine()}", f"{os.cpu_count()} CPUs"]
    parts += [f"{name} {package_version(name)}" for name in packages]
    return ", ".join(parts)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    return path


def progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def overhead_arguments(
    argv: Sequence[str] | None,
    description: str,
    *,
    rounds: int,
    counts: dict[str, tuple[int, str]],
    quick: tuple[int, ...],
    results: str,
) -> Any:
    """The command line the overhead benchmarks share; applies ``--quick`` and ``--wall-clock``.

    ``counts`` names each per-round count flag (``"calls"`` becomes ``--calls``) with its default
    and help; ``quick`` holds the rounds and then each count, in order, for ``--quick``."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=rounds)
    for name, (default, help_text) in counts.items():
        parser.add_argument(f"--{name}", type=int, default=default, help=help_text)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-seconds", type=float, default=100.0, help="stop adding rounds after this long (at least 5 rounds)")
    parser.add_argument("--note", help="a line to append to the report (how this run was set up)")
    parser.add_argument("--wall-clock", action="store_true", help="measure wall time instead of the thread's CPU time (idle machines)")
    parser.add_argument("--quick", action="store_true", help="a few rounds: check that it runs, not numbers to publish")
    parser.add_argument("--no-write", action="store_true", help=f"print only; do not write benchmarks/results/{results}")
    args = parser.parse_args(argv)
    args.results = results
    if args.quick:
        for name, value in zip(("rounds", *counts), quick):
            setattr(args, name, value)
    if args.wall_clock:
        use_wall_clock()
    return args


def publish(text: str, args: Any) -> None:
    """Print the report (with ``--note``) and write it under results/ unless ``--quick``/``--no-write``."""
    if args.note:
        text += f"\nNote: {args.note}\n"
    print(text)
    if not args.quick and not args.no_write:
        path = write_result(args.results, text)
        progress(f"written to {path}")
