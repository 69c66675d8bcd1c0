"""The shape every framework benchmark shares, so their numbers compare across frameworks.

Three variants of one agent run (two model calls and one tool: three steps), in interleaved rounds
whose order is shuffled each round: ``bare`` (nothing of GenOps), ``openai`` (the GenOps OpenAI
plugin alone: one CLIENT span per model call) and the framework's own key (the OpenAI plugin and
the framework plugin). Each variant gets a fresh engine on production-like telemetry exported
nowhere (``_common.noop_telemetry``), torn down (providers shut down) after its batch.

Two clocks per batch: the whole process's CPU time, the headline (frameworks run tools, callbacks
and exporters on other threads; GenOps completes its spans on a deferred thread), with the
deferred work and the span export of the batch finished before that clock stops, so none of it
leaks into the next variant's batch; and the calling thread's CPU time (what the application's
thread pays). Reported per step: medians over rounds and their IQR, the ratio to ``bare``, and
medians of per-round paired differences (vs ``bare``, and the framework plugin vs the OpenAI
plugin alone).
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from _common import Series, environment, markdown_table, noop_telemetry, overhead_arguments, progress, publish, timed_with_process

STEPS = 3  # two model calls and one tool execution per agent run


@dataclass
class Framework:
    """One framework benchmark: its names, its plugin, and how one agent run is described."""

    title: str  # "LangChain": the report's title and the plugin's name in it
    key: str  # the variant with the framework plugin, e.g. "langchain"
    plugin: Callable[[], Any]  # the framework plugin's instrumentor class
    packages: Sequence[str]  # distributions whose versions the report names
    workload: str  # "One `create_agent` run"
    results: str  # file under benchmarks/results/
    rounds: int = 15
    runs: int = 40
    variants: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.variants = ("bare", "openai", self.key)


def arguments(framework: Framework, argv: Sequence[str] | None, description: str) -> Any:
    return overhead_arguments(
        argv, description, rounds=framework.rounds, counts={"runs": (framework.runs, "agent runs per variant per round")}, quick=(2, 3), results=framework.results
    )


def _variant(framework: Framework, name: str) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None]]:
    """(set up, settle, tear down) of one variant, on a fresh engine and fresh telemetry."""
    from genops_autoinstrument import config
    from genops_autoinstrument.engine.engine import Engine
    from genops_autoinstrument.engine.runtime import set_engine
    from genops_instrumentation_openai import OpenAIInstrumentor

    plugins = {"bare": [], "openai": [OpenAIInstrumentor()], framework.key: [OpenAIInstrumentor(), framework.plugin()]}[name]
    tracer_provider, meter_provider = noop_telemetry(genops=True)
    engine = Engine(config.load({"GENOPS_TEAM": "bench"}), tracer_provider=tracer_provider, meter_provider=meter_provider)

    def setup() -> None:
        set_engine(engine)
        for plugin in plugins:
            plugin.instrument()

    def settle() -> None:
        """Finish the batch's deferred work and span export, so the batch's process CPU counts it."""
        engine.flush()
        tracer_provider.force_flush()

    def teardown() -> None:
        for plugin in reversed(plugins):
            plugin.uninstrument()
        set_engine(None)
        tracer_provider.shutdown()
        meter_provider.shutdown()

    return setup, settle, teardown


def measure(framework: Framework, run_once: Callable[[], None], args: Any) -> tuple[Series, Series]:
    """(process CPU, calling thread CPU) in µs per step, per variant, one value per round."""
    run_once()  # warm the framework's and the SDK's caches
    process, thread = Series(), Series()
    order = list(framework.variants)
    shuffle = random.Random(args.seed).shuffle
    for number in range(args.rounds):
        shuffle(order)
        for name in order:
            setup, settle, teardown = _variant(framework, name)
            setup()
            try:
                run_once()
                settle()
                on_thread, on_process = timed_with_process(lambda: [run_once() for _ in range(args.runs)], settle)
            finally:
                teardown()
            thread.add(name, on_thread / args.runs / STEPS * 1e6)
            process.add(name, on_process / args.runs / STEPS * 1e6)
        progress(f"round {number + 1}/{args.rounds}")
    return process, thread


def _iqr(values: Sequence[float]) -> float:
    if len(values) < 4:
        return 0.0
    quartiles = statistics.quantiles(sorted(values), n=4)
    return quartiles[2] - quartiles[0]


def _delta_iqr(series: Series, variant: str, baseline: str) -> float:
    return _iqr([v - b for v, b in zip(series.values[variant], series.values[baseline])])


def summary(framework: Framework, series: Series) -> dict[str, float]:
    """The numbers of the cross-framework table (µs per step): medians, the plugin's paired addition."""
    key = framework.key
    return {
        "bare": series.median("bare"),
        "openai": series.median("openai"),
        "framework": series.median(key),
        "added": series.paired_delta(key, "openai"),
        "added_iqr": _delta_iqr(series, key, "openai"),
    }


def _rows(framework: Framework, series: Series) -> list[list[str]]:
    labels = {"bare": "bare", "openai": "+ OpenAI plugin", framework.key: f"+ OpenAI and {framework.title} plugins"}
    rows = []
    for name in framework.variants:
        bare = name == "bare"
        rows.append(
            [
                labels[name],
                f"{series.median(name):.0f}",
                f"{series.spread(name):.0f}",
                "1.00" if bare else f"{series.median(name) / series.median('bare'):.2f}",
                "" if bare else f"{series.paired_delta(name, 'bare'):+.0f} (IQR {_delta_iqr(series, name, 'bare'):.0f})",
            ]
        )
    return rows


def report(framework: Framework, process: Series, thread: Series, args: Any) -> None:
    """Print the report and write it under results/ (unless --quick/--no-write)."""
    header = ["variant", "µs per step (median)", "IQR", "ratio vs bare", "µs added per step vs bare (paired median)"]
    key = framework.key
    mine = summary(framework, process)
    on_thread = summary(framework, thread)
    text = "\n".join(
        [
            f"# {framework.title} plugin: what it adds per agent step",
            "",
            environment(tuple(framework.packages) + ("openai", "opentelemetry-sdk")),
            "",
            f"{framework.workload} = {STEPS} steps (2 model calls, 1 tool); {args.runs} runs per variant per round, "
            f"{args.rounds} rounds (order shuffled each round); µs per step = a round's CPU time / runs / {STEPS}.",
            "",
            "Whole-process CPU (the framework's worker threads, GenOps' deferred thread and the span export "
            "of the batch included):",
            "",
            markdown_table(header, _rows(framework, process)),
            "",
            "CPU of the application's (calling) thread only:",
            "",
            markdown_table(header, _rows(framework, thread)),
            "",
            f"The {framework.title} plugin adds **{mine['added']:+.0f} µs per step** (IQR {mine['added_iqr']:.0f}) on top of the "
            f"OpenAI plugin alone, process CPU (ratio {process.median(key) / process.median('openai'):.2f}); "
            f"{on_thread['added']:+.0f} µs (IQR {on_thread['added_iqr']:.0f}) on the application's thread.",
        ]
    )
    publish(text, args)
