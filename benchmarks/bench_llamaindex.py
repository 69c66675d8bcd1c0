"""What the GenOps LlamaIndex plugin adds per agent step, next to LlamaIndex's bare step, in one run.

Three variants, in interleaved rounds whose order is shuffled each round:

* ``bare``: LlamaIndex, nothing instrumented;
* ``openai``: the GenOps OpenAI plugin only (each model call a CLIENT span, roots of their own);
* ``llamaindex``: the OpenAI and LlamaIndex plugins (agent run and tool call as spans and units of
  work, the model spans under them, rolled-up cost; every LlamaIndex span passes the handler).

The workload is one ``FunctionAgent`` run (not streaming) with one tool and two model calls, on the
real OpenAI SDK answering from an in-process ``MockTransport`` (no socket), telemetry exported
nowhere through a BatchSpanProcessor. A step is one model call or one tool execution (3 per run).
Reported: medians of per-round means per run, and the median of per-round paired differences
(µs added per step).

    .venv/bin/python benchmarks/bench_llamaindex.py            # ~1 minute
    .venv/bin/python benchmarks/bench_llamaindex.py --quick    # smoke run
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Series, environment, markdown_table, noop_telemetry, overhead_arguments, progress, publish, timed  # noqa: E402

STEPS = 3  # two model calls and one tool execution per agent run
VARIANTS = ("bare", "openai", "llamaindex")
QUESTION = "What is the weather in Paris?"


def _answers() -> tuple[bytes, bytes]:
    usage = {"prompt_tokens": 81, "completion_tokens": 18, "total_tokens": 99}
    base = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5q", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini-2024-07-18"}
    call = {"id": "call_Qx7Lm2Vt0001", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    tool = {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}], "usage": usage}
    text = {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": "18°C and sunny."}, "finish_reason": "stop"}], "usage": {**usage, "prompt_tokens": 24, "completion_tokens": 9, "total_tokens": 33}}
    return json.dumps(tool).encode(), json.dumps(text).encode()


def _agent() -> Any:
    import httpx
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.llms.openai import OpenAI

    tool_answer, text_answer = _answers()

    def handler(request: httpx.Request) -> httpx.Response:
        answered = b'"role":"tool"' in request.content or b'"role": "tool"' in request.content
        return httpx.Response(200, content=text_answer if answered else tool_answer, headers={"content-type": "application/json"})

    def get_weather(city: str) -> str:
        """The current weather of a city."""
        return f"18°C and sunny in {city}"

    transport = httpx.MockTransport(handler)
    llm = OpenAI(model="gpt-4o-mini", api_key="sk-bench", max_retries=0, async_http_client=httpx.AsyncClient(transport=transport))
    return FunctionAgent(name="weather_agent", tools=[get_weather], llm=llm, streaming=False)


def _variant(name: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(set up, tear down) of one variant."""
    from genops_autoinstrument import config
    from genops_autoinstrument.engine.engine import Engine
    from genops_autoinstrument.engine.runtime import set_engine
    from genops_instrumentation_llamaindex import LlamaIndexInstrumentor
    from genops_instrumentation_openai import OpenAIInstrumentor

    plugins = {"bare": [], "openai": [OpenAIInstrumentor()], "llamaindex": [OpenAIInstrumentor(), LlamaIndexInstrumentor()]}[name]

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


async def _runs(agent: Any, count: int) -> None:
    for _ in range(count):
        await agent.run(user_msg=QUESTION)


def main(argv: list[str] | None = None) -> None:
    args = overhead_arguments(argv, __doc__ or "", rounds=15, counts={"runs": (30, "agent runs per variant per round")}, quick=(2, 3), results="llamaindex.md")
    agent = _agent()
    asyncio.run(_runs(agent, 1))  # warm LlamaIndex's and the SDK's caches
    series = Series()
    order = list(VARIANTS)
    shuffle = random.Random(args.seed).shuffle
    for number in range(args.rounds):
        shuffle(order)
        for name in order:
            setup, teardown = _variant(name)
            setup()
            try:
                asyncio.run(_runs(agent, 1))
                seconds = timed(lambda: asyncio.run(_runs(agent, args.runs)))
            finally:
                teardown()
            series.add(name, seconds / args.runs * 1e6)
        progress(f"round {number + 1}/{args.rounds}")
    rows = [[name, f"{series.median(name):.0f}", "" if name == "bare" else f"{series.paired_delta(name, 'bare') / STEPS:+.0f}", f"{series.spread(name):.0f}"] for name in VARIANTS]
    added = series.paired_delta("llamaindex", "openai") / STEPS
    text = "\n".join(
        [
            "# LlamaIndex plugin: what it adds per agent step",
            "",
            environment(("llama-index-core", "llama-index-workflows", "llama-index-instrumentation", "llama-index-llms-openai", "openai", "opentelemetry-sdk")),
            "",
            f"One `FunctionAgent` run = {STEPS} steps (2 model calls, 1 tool); {args.runs} runs per variant per round, {args.rounds} rounds.",
            "",
            markdown_table(["variant", "µs per run (median)", "µs added per step vs bare", "spread (IQR, µs per run)"], rows),
            "",
            f"The LlamaIndex plugin adds {added:+.0f} µs per step on top of the OpenAI plugin alone.",
        ]
    )
    publish(text, args)


if __name__ == "__main__":
    main()
