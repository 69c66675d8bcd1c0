"""What the GenOps OpenAI Agents SDK plugin adds per agent step, next to the SDK's bare step, in one run.

Three variants, in interleaved rounds whose order is shuffled each round:

* ``bare``: the Agents SDK, nothing instrumented (its own tracing on, as by default: the SDK's
  batch processor queues the spans; without an OpenAI key it exports nothing);
* ``openai``: the GenOps OpenAI plugin only (each model call a CLIENT span, roots of their own);
* ``agents``: the OpenAI and Agents SDK plugins (workflow, agent and tool spans as units of work,
  the model spans under them, rolled-up cost).

The workload is one ``Runner.run`` of an agent with one tool and two model calls (Responses API),
on the real OpenAI SDK answering from an in-process ``MockTransport`` (no socket), telemetry
exported nowhere through a BatchSpanProcessor. A step is one model call or one tool execution
(3 per run). Reported: medians of per-round means per run, and the median of per-round paired
differences (µs added per step).

    .venv/bin/python benchmarks/bench_openai_agents.py            # ~1 minute
    .venv/bin/python benchmarks/bench_openai_agents.py --quick    # smoke run
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Series, environment, markdown_table, noop_telemetry, overhead_arguments, progress, publish, timed  # noqa: E402

STEPS = 3  # two model calls and one tool execution per agent run
VARIANTS = ("bare", "openai", "agents")


def _responses() -> tuple[bytes, bytes]:
    """(an answer calling the tool, a text answer), as the Responses API returns them."""
    base = {"object": "response", "created_at": 1741569952, "status": "completed", "error": None, "incomplete_details": None, "model": "gpt-4o-mini-2024-07-18", "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "text": {"format": {"type": "text"}}}
    call = {"id": "fc_68af0001", "type": "function_call", "status": "completed", "call_id": "call_Qx7Lm2Vt0001", "name": "get_weather", "arguments": '{"city": "Paris"}'}
    message = {"id": "msg_68af0002", "type": "message", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "annotations": [], "text": "18°C and sunny."}]}

    def usage(prompt: int, output: int) -> dict[str, Any]:
        return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + output}

    tool = {**base, "id": "resp_68af0001", "output": [call], "usage": usage(81, 18)}
    text = {**base, "id": "resp_68af0002", "output": [message], "usage": usage(24, 9)}
    return json.dumps(tool).encode(), json.dumps(text).encode()


def _agent() -> Any:
    import httpx2
    from agents import Agent, OpenAIResponsesModel, function_tool
    from openai import AsyncOpenAI

    tool_answer, text_answer = _responses()

    def handler(request: httpx2.Request) -> httpx2.Response:
        answered = b"function_call_output" in request.content
        return httpx2.Response(200, content=text_answer if answered else tool_answer, headers={"content-type": "application/json"})

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather of a city."""
        return f"18°C and sunny in {city}"

    client = AsyncOpenAI(api_key="sk-bench", base_url="http://127.0.0.1:8765/v1", max_retries=0, http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(handler)))
    return Agent(name="weather_agent", instructions="Be brief.", tools=[get_weather], model=OpenAIResponsesModel("gpt-4o-mini", client))


def _variant(name: str) -> tuple[Callable[[], None], Callable[[], None]]:
    """(set up, tear down) of one variant."""
    from genops_autoinstrument import config
    from genops_autoinstrument.engine.engine import Engine
    from genops_autoinstrument.engine.runtime import set_engine
    from genops_instrumentation_openai import OpenAIInstrumentor
    from genops_instrumentation_openai_agents import OpenAIAgentsInstrumentor

    plugins = {"bare": [], "openai": [OpenAIInstrumentor()], "agents": [OpenAIInstrumentor(), OpenAIAgentsInstrumentor()]}[name]

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
    args = overhead_arguments(argv, __doc__ or "", rounds=15, counts={"runs": (40, "agent runs per variant per round")}, quick=(2, 3), results="openai_agents.md")
    os.environ.pop("OPENAI_API_KEY", None)  # the SDK's exporter keeps its spans on this machine
    from agents import Runner

    agent = _agent()
    question = "What is the weather in Paris?"
    loop = asyncio.new_event_loop()

    def run_once() -> None:
        loop.run_until_complete(Runner.run(agent, question))

    run_once()  # warm the SDK's caches
    series = Series()
    order = list(VARIANTS)
    shuffle = random.Random(args.seed).shuffle
    for number in range(args.rounds):
        shuffle(order)
        for name in order:
            setup, teardown = _variant(name)
            setup()
            try:
                run_once()
                seconds = timed(lambda: [run_once() for _ in range(args.runs)])
            finally:
                teardown()
            series.add(name, seconds / args.runs * 1e6)
        progress(f"round {number + 1}/{args.rounds}")
    loop.close()
    rows = [[name, f"{series.median(name):.0f}", "" if name == "bare" else f"{series.paired_delta(name, 'bare') / STEPS:+.0f}", f"{series.spread(name):.0f}"] for name in VARIANTS]
    added = series.paired_delta("agents", "openai") / STEPS
    text = "\n".join(
        [
            "# OpenAI Agents SDK plugin: what it adds per agent step",
            "",
            environment(("openai-agents", "openai", "opentelemetry-sdk")),
            "",
            f"One `Runner.run` = {STEPS} steps (2 model calls, 1 tool); {args.runs} runs per variant per round, {args.rounds} rounds.",
            "",
            markdown_table(["variant", "µs per run (median)", "µs added per step vs bare", "spread (IQR, µs per run)"], rows),
            "",
            f"The Agents SDK plugin adds {added:+.0f} µs per step on top of the OpenAI plugin alone.",
        ]
    )
    publish(text, args)


if __name__ == "__main__":
    main()
