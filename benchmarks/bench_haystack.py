"""What the GenOps Haystack plugin adds per agent step, next to Haystack's bare step, in one run.

Three variants, in interleaved rounds whose order is shuffled each round:

* ``bare``: Haystack, nothing instrumented (its tracing disabled, as by default);
* ``openai``: the GenOps OpenAI plugin only (each model call a CLIENT span, roots of their own);
* ``haystack``: the OpenAI and Haystack plugins (GenOps' tracer: the pipeline, its components, the
  agent and its tool as spans and units of work, the model spans under them, rolled-up cost).

The workload is one pipeline run (a ChatPromptBuilder, then an Agent with one tool and two model
calls through OpenAIChatGenerator), on the real OpenAI SDK answering from an in-process
``MockTransport`` (no socket), telemetry exported nowhere through a BatchSpanProcessor. A step is
one model call or one tool execution (3 per run). Measured: the process's CPU time (Haystack runs
each tool call on a worker thread). Reported: medians of per-round means per run, and the median of
per-round paired differences (µs added per step).

    .venv/bin/python benchmarks/bench_haystack.py            # ~1 minute
    .venv/bin/python benchmarks/bench_haystack.py --quick    # smoke run
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Series, environment, markdown_table, noop_telemetry, overhead_arguments, progress, publish, timed_with_process  # noqa: E402

STEPS = 3  # two model calls and one tool execution per agent run
VARIANTS = ("bare", "openai", "haystack")
INPUT = {"prompt_builder": {"city": "Paris"}}


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _answers() -> tuple[bytes, bytes]:
    base = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5q", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini-2024-07-18"}
    call = {"id": "call_Qx7Lm2Vt0001", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    tool = {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}], "usage": _usage(81, 18)}
    text = {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": "18°C and sunny."}, "finish_reason": "stop"}], "usage": _usage(24, 9)}
    return json.dumps(tool).encode(), json.dumps(text).encode()


def _pipeline() -> Any:
    import httpx

    os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
    from haystack import Pipeline
    from haystack.components.agents import Agent
    from haystack.components.builders import ChatPromptBuilder
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.dataclasses import ChatMessage
    from haystack.tools import tool
    from haystack.utils import Secret

    tool_answer, text_answer = _answers()

    def handler(request: httpx.Request) -> httpx.Response:
        answered = b'"role":"tool"' in request.content or b'"role": "tool"' in request.content
        return httpx.Response(200, content=text_answer if answered else tool_answer, headers={"content-type": "application/json"})

    @tool
    def get_weather(city: str) -> str:
        """The current weather of a city."""
        return f"18°C and sunny in {city}"

    generator = OpenAIChatGenerator(
        model="gpt-4o-mini", api_key=Secret.from_token("sk-bench"), api_base_url="http://localhost.bench/v1", max_retries=0,
        http_client_kwargs={"transport": httpx.MockTransport(handler)},
    )
    pipeline = Pipeline()
    pipeline.add_component("prompt_builder", ChatPromptBuilder(template=[ChatMessage.from_user("What is the weather in {{city}}?")], required_variables="*"))
    pipeline.add_component("weather_agent", Agent(chat_generator=generator, tools=[get_weather]))
    pipeline.connect("prompt_builder.prompt", "weather_agent.messages")
    return pipeline


def _variant(name: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(set up, tear down) of one variant."""
    from genops_autoinstrument import config
    from genops_autoinstrument.engine.engine import Engine
    from genops_autoinstrument.engine.runtime import set_engine
    from genops_instrumentation_haystack import HaystackInstrumentor
    from genops_instrumentation_openai import OpenAIInstrumentor

    plugins = {"bare": [], "openai": [OpenAIInstrumentor()], "haystack": [OpenAIInstrumentor(), HaystackInstrumentor()]}[name]

    def setup() -> None:
        tracer_provider, meter_provider = noop_telemetry(genops=True)
        set_engine(Engine(config.load({"GENOPS_TEAM": "bench"}), tracer_provider=tracer_provider, meter_provider=meter_provider))
        for plugin in plugins:
            plugin.instrument()

    def teardown() -> None:
        for plugin in reversed(plugins):
            plugin.uninstrument()
        set_engine(None)

    return setup, teardown


def main(argv: list[str] | None = None) -> None:
    args = overhead_arguments(argv, __doc__ or "", rounds=15, counts={"runs": (40, "agent runs per variant per round")}, quick=(2, 3), results="haystack.md")
    pipeline = _pipeline()
    pipeline.run(INPUT)  # warm Haystack's and the SDK's caches
    series = Series()
    order = list(VARIANTS)
    shuffle = random.Random(args.seed).shuffle
    for number in range(args.rounds):
        shuffle(order)
        for name in order:
            setup, teardown = _variant(name)
            setup()
            try:
                pipeline.run(INPUT)
                # The whole process's CPU time: Haystack runs each tool call in a thread pool.
                _, seconds = timed_with_process(lambda: [pipeline.run(INPUT) for _ in range(args.runs)])
            finally:
                teardown()
            series.add(name, seconds / args.runs * 1e6)
        progress(f"round {number + 1}/{args.rounds}")
    rows = [[name, f"{series.median(name):.0f}", "" if name == "bare" else f"{series.paired_delta(name, 'bare') / STEPS:+.0f}", f"{series.spread(name):.0f}"] for name in VARIANTS]
    added = series.paired_delta("haystack", "openai") / STEPS
    text = "\n".join(
        [
            "# Haystack plugin: what it adds per agent step",
            "",
            environment(("haystack-ai", "openai", "opentelemetry-sdk")),
            "",
            f"One pipeline run (a prompt builder, then an Agent) = {STEPS} agent steps (2 model calls, 1 tool); {args.runs} runs per variant per round, {args.rounds} rounds.",
            "",
            markdown_table(["variant", "process CPU µs per run (median)", "µs added per step vs bare", "spread (IQR, µs per run)"], rows),
            "",
            f"The Haystack plugin adds {added:+.0f} µs per step on top of the OpenAI plugin alone.",
        ]
    )
    publish(text, args)


if __name__ == "__main__":
    main()
