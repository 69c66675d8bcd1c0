"""What the GenOps pydantic-ai plugin adds per agent step, next to pydantic-ai's bare step, in one run.

Three variants, in interleaved rounds whose order is shuffled each round:

* ``bare``: pydantic-ai, nothing instrumented (its own instrumentation off, as by default);
* ``openai``: the GenOps OpenAI plugin only (each model call a CLIENT span, roots of their own);
* ``pydantic_ai``: the OpenAI and pydantic-ai plugins (pydantic-ai's own instrumentation on
  GenOps' providers: its ``invoke_agent``, ``chat`` and ``execute_tool`` spans, each ``chat`` span
  enriched by the OpenAI plugin instead of a span of its own, rolled-up cost on the agent span).

The workload is one ``Agent.run`` (not streaming) with one tool and two model calls through
pydantic-ai's OpenAI chat model, on the real OpenAI SDK answering from an in-process
``MockTransport`` (no socket), telemetry exported nowhere through a BatchSpanProcessor. A step is
one model call or one tool execution (3 per run). pydantic-ai runs a plain tool on a worker
thread, so the process's CPU time is the headline. See ``_frameworks.py`` for what is reported.

    .venv/bin/python benchmarks/bench_pydantic_ai.py            # ~1 minute (--rounds 41: ~2 minutes)
    .venv/bin/python benchmarks/bench_pydantic_ai.py --quick    # smoke run
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


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _answers() -> tuple[bytes, bytes]:
    base = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5q", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini-2024-07-18", "service_tier": "default", "system_fingerprint": "fp_06737a9306"}
    call = {"id": "call_Qx7Lm2Vt0001", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    tool = {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}, "logprobs": None, "finish_reason": "tool_calls"}], "usage": _usage(81, 18)}
    text = {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": "18°C and sunny.", "refusal": None}, "logprobs": None, "finish_reason": "stop"}], "usage": _usage(24, 9)}
    return json.dumps(tool).encode(), json.dumps(text).encode()


def _agent() -> Any:
    import httpx
    import openai
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    tool_answer, text_answer = _answers()

    def handler(request: httpx.Request) -> httpx.Response:
        answered = b'"role":"tool"' in request.content or b'"role": "tool"' in request.content
        return httpx.Response(200, content=text_answer if answered else tool_answer, headers={"content-type": "application/json"})

    client = openai.AsyncOpenAI(api_key="sk-bench", max_retries=0, http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(openai_client=client))
    agent = Agent(model, name="weather_agent", instructions="Answer weather questions with the tool.")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The current weather of a city."""
        return f"18°C and sunny in {city}"

    return agent


async def _run(agent: Any) -> None:
    result = await agent.run(QUESTION)
    assert result.output == "18°C and sunny.", result.output  # the tool was called, then the answer


def _plugin() -> Any:
    from genops_instrumentation_pydantic_ai import PydanticAIInstrumentor

    return PydanticAIInstrumentor()


FRAMEWORK = Framework(
    title="pydantic-ai", key="pydantic_ai", plugin=_plugin, packages=("pydantic-ai-slim",), workload="One `Agent.run`", results="pydantic_ai.md"
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
