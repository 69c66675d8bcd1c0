"""What the GenOps LlamaIndex plugin adds per agent step, next to LlamaIndex's bare step, in one run.

Three variants, in interleaved rounds whose order is shuffled each round:

* ``bare``: LlamaIndex, nothing instrumented;
* ``openai``: the GenOps OpenAI plugin only (each model call a CLIENT span, roots of their own);
* ``llamaindex``: the OpenAI and LlamaIndex plugins (agent run and tool call as spans and units of
  work, the model spans under them, rolled-up cost; every LlamaIndex span passes the handler).

The workload is one ``FunctionAgent`` run (not streaming) with one tool and two model calls, on the
real OpenAI SDK answering from an in-process ``MockTransport`` (no socket), telemetry exported
nowhere through a BatchSpanProcessor. A step is one model call or one tool execution (3 per run).
See ``_frameworks.py`` for what is
measured and reported (process and application-thread CPU per step, medians, IQR, paired differences).

    .venv/bin/python benchmarks/bench_llamaindex.py            # ~1 minute (--rounds 41: ~2 minutes)
    .venv/bin/python benchmarks/bench_llamaindex.py --quick    # smoke run
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _frameworks import Framework, arguments, measure, report  # noqa: E402

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


async def _run(agent: Any) -> None:
    await agent.run(user_msg=QUESTION)


def _plugin() -> Any:
    from genops_instrumentation_llamaindex import LlamaIndexInstrumentor

    return LlamaIndexInstrumentor()


FRAMEWORK = Framework(
    title="LlamaIndex", key="llamaindex", plugin=_plugin,
    packages=("llama-index-core", "llama-index-workflows", "llama-index-instrumentation", "llama-index-llms-openai"),
    workload="One `FunctionAgent` run", results="llamaindex.md", runs=30,
)


def main(argv: list[str] | None = None) -> None:
    args = arguments(FRAMEWORK, argv, __doc__ or "")
    agent = _agent()
    loop = asyncio.new_event_loop()
    try:
        process, thread = measure(FRAMEWORK, lambda: loop.run_until_complete(_run(agent)), args)
    finally:
        loop.close()
    report(FRAMEWORK, process, thread, args)


if __name__ == "__main__":
    main()
