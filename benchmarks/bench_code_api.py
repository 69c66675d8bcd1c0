"""What the code API costs per use: an empty unit of work, an attribution block, and a model call
made inside either, next to their baselines in the same run.

Two sets of variants, each measured in interleaved rounds (order shuffled each round):

* **Blocks, per use** (``--uses`` per batch): ``with nullcontext():`` (the baseline: the loop and
  the ``with`` protocol), ``with attribution(customer_id="a"):``, ``with track("x"):`` (an empty
  unit of work: a span started and ended, its roll-up set, the unit-cost metric added),
  ``with track("x", max_cost=0.10):``, and ``attribution`` with ``GENOPS_ENABLED=false``.
* **Model calls, per call** (``--calls`` per batch): the real ``openai`` SDK on an in-process mock
  transport, GenOps' OpenAI plugin instrumented, made with no enclosing block, inside one
  ``attribution`` block, inside one unit of work, and inside one unit with a cost cap (each block
  entered once per batch, so its own entry is spread over the batch's calls).

The engine is the real one, with the OpenTelemetry SDK set up as ``genops-run`` sets it up and
exporters that drop everything (benchmarks/_common.py). Reported: medians of per-round means and
the median of same-round differences from the baseline.

    .venv-test/bin/python benchmarks/bench_code_api.py             # ~1-2 minutes; writes results/code_api.md
    .venv-test/bin/python benchmarks/bench_code_api.py --quick     # smoke run, prints only
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Series, environment, markdown_table, overhead_arguments, progress, publish, timed, timed_with_process  # noqa: E402

RESULTS = "code_api.md"
CAP_USD = 0.10  # never reached: the capped variants measure the cap's bookkeeping, not refusals


def arguments(argv: Sequence[str] | None) -> Any:
    """The flags of the other benchmarks (_common.overhead_arguments), with --uses for the blocks."""
    counts = {"uses": (2000, "block uses per variant per round"), "calls": (30, "model calls per variant per round")}
    return overhead_arguments(argv, __doc__.splitlines()[0], rounds=60, counts=counts, quick=(3, 200, 5), results=RESULTS)


class Setup:
    """The real engine (noop exporters) and GenOps' OpenAI plugin, from bench_openai_overhead."""

    def __init__(self) -> None:
        from bench_openai_overhead import MESSAGES, MODEL, GenOps, make_clients

        self.genops = GenOps()
        if not self.genops.available:
            raise SystemExit(f"GenOps cannot be measured: {self.genops.reason}")
        self.client, _, self.transport = make_clients()
        self.request = {"model": MODEL, "messages": MESSAGES, "max_tokens": 100}

    def close(self) -> None:
        self.genops.off()


# --- the variants -------------------------------------------------------------------------------
Block = Callable[[], Any]  # a context manager factory: one use = one `with factory():`


class SpanFloor:
    """The OpenTelemetry SDK alone doing what a unit's telemetry needs: a span started with 6
    attributes, made current, 8 more set at its end, ended, and one counter add with 4 dimensions.
    No unit of work recorded as a span and a metric can cost less."""

    def __init__(self) -> None:
        from _common import noop_telemetry
        from opentelemetry import context, trace

        tracer_provider, meter_provider = noop_telemetry()
        self._tracer = tracer_provider.get_tracer("floor")
        self._counter = meter_provider.get_meter("floor").create_counter("floor.cost")
        self._context, self._trace = context, trace
        self._start = {f"start.{i}": f"value{i}" for i in range(6)}
        self._end = {f"end.{i}": i for i in range(8)}
        self._dimensions = {f"dim.{i}": f"value{i}" for i in range(4)}

    def __call__(self) -> "SpanFloor":
        return self

    def __enter__(self) -> None:
        self._span = self._tracer.start_span("x", attributes=self._start)
        self._token = self._context.attach(self._trace.set_span_in_context(self._span))

    def __exit__(self, *exc: Any) -> None:
        self._context.detach(self._token)
        self._span.set_attributes(self._end)
        self._span.end()
        self._counter.add(0.0, self._dimensions)


def blocks() -> dict[str, tuple[str, Block]]:
    from genops_autoinstrument import attribution, track

    return {
        "baseline": ("`with nullcontext():` (baseline)", contextlib.nullcontext),
        "attribution": ('`with attribution(customer_id="a"):`', lambda: attribution(customer_id="a")),
        "track": ('`with track("x"):` (empty unit of work)', lambda: track("x")),
        "track-cap": (f'`with track("x", max_cost={CAP_USD}):`', lambda: track("x", max_cost=CAP_USD)),
        "disabled": ('`with attribution(customer_id="a"):`, `GENOPS_ENABLED=false`', lambda: attribution(customer_id="a")),
        "floor": ("floor: a bare OpenTelemetry span (14 attributes, current) + one counter add", SpanFloor()),
    }


def enclosures() -> dict[str, tuple[str, Block]]:
    from genops_autoinstrument import attribution, track

    return {
        "none": ("no enclosing block (baseline)", contextlib.nullcontext),
        "attribution": ('inside `attribution(customer_id="a")`', lambda: attribution(customer_id="a")),
        "track": ('inside `track("x")`', lambda: track("x")),
        "track-cap": (f'inside `track("x", max_cost={CAP_USD})`', lambda: track("x", max_cost=CAP_USD)),
    }


@contextlib.contextmanager
def disabled(flag: bool) -> Any:
    """``GENOPS_ENABLED=false`` for the turn of the disabled variant (read on every block entry)."""
    if not flag:
        yield
        return
    previous = os.environ.get("GENOPS_ENABLED")
    os.environ["GENOPS_ENABLED"] = "false"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["GENOPS_ENABLED"]
        else:
            os.environ["GENOPS_ENABLED"] = previous


def block_batch(factory: Block, uses: int) -> Callable[[], None]:
    def run() -> None:
        for _ in range(uses):
            with factory():
                pass

    return run


def call_batch(setup: Setup, factory: Block, calls: int) -> Callable[[], None]:
    create, request = setup.client.chat.completions.create, setup.request  # looked up after patching

    def run() -> None:
        with factory():
            for _ in range(calls):
                create(**request)

    return run


def check_recorded(setup: Setup) -> None:
    """Fail loudly unless a unit really records its span and rolls up its call (a silently
    unrecorded run would measure nothing)."""
    from genops_autoinstrument import attribution, track
    from genops_autoinstrument.api.testing import capture

    with capture(setup.genops.settings) as recorded:
        setup.genops.on(recorded.engine)
        try:
            with attribution(customer_id="a"), track("x", max_cost=CAP_USD):
                setup.client.chat.completions.create(**setup.request)
        finally:
            setup.genops.off()
        spans = {span.name: span for span in recorded.spans()}
    unit = spans.get("x")
    if unit is None or unit.attributes.get("genops.unit.calls") != 1 or unit.attributes.get("genops.customer_id") != "a":
        raise SystemExit(f"the code API recorded {sorted(spans)}: no unit of work with one call; the benchmark would measure nothing")


# --- measurement --------------------------------------------------------------------------------
def run(args: Any) -> dict[str, Any]:
    setup = Setup()
    check_recorded(setup)
    setup.genops.on()  # the engine current and the plugin instrumented for the whole run
    try:
        block_variants, call_variants = blocks(), enclosures()
        per_use, per_call, per_call_process = Series(), Series(), Series()
        order = random.Random(args.seed)
        started = time.perf_counter()
        rounds = args.rounds
        for round_number in range(rounds + 1):  # round 0 warms up and is discarded
            turns = [("block", name) for name in block_variants] + [("call", name) for name in call_variants]
            order.shuffle(turns)
            for kind, name in turns:
                if kind == "block":
                    with disabled(name == "disabled"):
                        block_batch(block_variants[name][1], 20)()
                        elapsed = timed(block_batch(block_variants[name][1], args.uses))
                    value, series = elapsed / args.uses * 1e6, per_use
                else:
                    call_batch(setup, call_variants[name][1], 2)()
                    setup.genops.settle()
                    elapsed, process = timed_with_process(call_batch(setup, call_variants[name][1], args.calls), setup.genops.settle)
                    value, series = elapsed / args.calls * 1e6, per_call
                    if round_number:
                        per_call_process.add(name, process / args.calls * 1e6)
                if round_number:
                    series.add(name, value)
            if round_number and round_number % 10 == 0:
                progress(f"round {round_number}/{rounds} ({time.perf_counter() - started:.0f}s)")
            if round_number >= 5 and time.perf_counter() - started > args.max_seconds:
                progress(f"stopping after {round_number} rounds: --max-seconds {args.max_seconds:.0f} reached")
                rounds = round_number
                break
    finally:
        setup.close()
    return {"rounds": rounds, "blocks": block_variants, "calls": call_variants, "per_use": per_use, "per_call": per_call, "per_call_process": per_call_process,
            "transport": setup.transport, "seconds": time.perf_counter() - started}


def paired_spread(series: Series, name: str, baseline: str) -> float:
    """Interquartile range over rounds of the same-round differences from the baseline (their noise)."""
    values = sorted(v - b for v, b in zip(series.values[name], series.values[baseline]))
    if len(values) < 4:
        return 0.0
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[2] - quartiles[0]


def _rows(series: Series, variants: dict[str, tuple[str, Block]], baseline: str, digits: int) -> list[list[str]]:
    rows = []
    for name, (label, _) in variants.items():
        median = series.median(name)
        if name == baseline:
            rows.append([label, f"{median:.{digits}f}", "—", "—", f"{series.spread(name):.{digits}f}"])
            continue
        added = series.paired_delta(name, baseline)
        spread = paired_spread(series, name, baseline)
        rows.append([label, f"{median:.{digits}f}", f"{added:+.{digits}f}", f"{median / series.median(baseline):.2f}", f"{spread:.{digits}f}"])
    return rows


def _added(series: Series, name: str, baseline: str) -> str:
    """The same-round difference in words: a number, or "no measurable difference" inside the noise."""
    added, spread = series.paired_delta(name, baseline), paired_spread(series, name, baseline)
    if abs(added) < spread / 2:
        return f"no measurable difference ({added:+.1f} µs, noise ±{spread / 2:.1f} µs)"
    return f"{added:+.1f} µs"


def _call_rows(result: dict[str, Any]) -> list[list[str]]:
    """Application-thread rows with the whole process's CPU (deferred work included) beside them."""
    thread_rows = _rows(result["per_call"], result["calls"], "none", 1)
    process = result["per_call_process"]
    rows = []
    for row, name in zip(thread_rows, result["calls"]):
        added = "—" if name == "none" else f"{process.paired_delta(name, 'none'):+.1f}"
        rows.append(row[:4] + [f"{process.median(name):.1f}", added] + row[4:])
    return rows


def report(result: dict[str, Any], args: Any) -> str:
    per_use, per_call, per_call_process = result["per_use"], result["per_call"], result["per_call_process"]
    header_use = ["block, per use", "µs", "added µs", "ratio", "noise (IQR) µs"]
    header_call = ["one model call (`chat.completions.create`)", "µs per call", "added µs", "ratio", "process CPU µs", "process added µs", "noise (IQR) µs"]
    unit = per_use.paired_delta("track", "baseline")
    scope = per_use.paired_delta("attribution", "baseline")
    off = per_use.paired_delta("disabled", "baseline")
    floor = per_use.paired_delta("floor", "baseline")
    in_unit, in_scope, in_cap = (_added(per_call, name, "none") for name in ("track", "attribution", "track-cap"))
    in_unit_process = _added(per_call_process, "track", "none")
    lines = [
        "# The code API, per use (benchmarks/bench_code_api.py)",
        "",
        markdown_table(header_use, _rows(per_use, result["blocks"], "baseline", 2)),
        "",
        markdown_table(header_call, _call_rows(result)),
        "",
        "Medians over rounds of per-round means; *added* is the median of same-round differences from the baseline "
        "(first row of each table); *ratio* is variant / baseline; *noise* is the interquartile range over rounds of the "
        "baseline's per-round means and of each variant's same-round differences (application thread).",
        "",
        f"- An empty unit of work costs **{unit:.1f} µs** per use, an attribution block **{scope:.2f} µs** "
        f"(**{off:.2f} µs** with `GENOPS_ENABLED=false`). The OpenTelemetry SDK alone takes {floor:.1f} µs for a span and "
        "a metric like the unit's (the floor row): most of a unit's cost is that telemetry.",
        f"- A model call made inside an attribution block: {in_scope}; inside a unit of work: {in_unit}; "
        f"inside a capped unit: {in_cap}, against the same call with no block (each block entered once per "
        f"{args.calls} calls) on the application thread. The end of a unit completes the deferred work of its calls "
        "(pricing, span ends, metrics) on the application thread, so that its totals are final: work a call outside any "
        f"unit leaves to GenOps' deferred thread. Counting every thread (process CPU), a call inside a unit: "
        f"{in_unit_process}. A cap also holds each call's estimate before it is sent and reconciles it at once, "
        "as a budget does.",
        "",
        f"Clock: {'wall time (`perf_counter`)' if args.wall_clock else 'CPU time of the application thread (`time.thread_time`)'}. "
        f"Setup: {result['rounds']} interleaved rounds (order shuffled each round, one warm-up round discarded) of "
        f"{args.uses} block uses and {args.calls} model calls per variant; GenOps' engine with a `BatchSpanProcessor` and a "
        "`PeriodicExportingMetricReader` whose exporters drop everything; attribution from "
        "`GENOPS_TEAM`/`GENOPS_PROJECT`/`GENOPS_ENVIRONMENT`, no budget rules; the real `openai` SDK on an in-process "
        f"`{result['transport']}` returning pre-encoded responses. Run time {result['seconds']:.0f} s.",
        "",
        "Environment: " + environment(["openai", "opentelemetry-sdk", "genops-autoinstrument", "genops-instrumentation-openai"]) + ".",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    args = arguments(argv)
    result = run(args)
    publish(report(result, args), args)


if __name__ == "__main__":
    main()
