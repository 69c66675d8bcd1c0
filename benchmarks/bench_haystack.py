"""What the GenOps Haystack plugin adds per agent step, next to Haystack's bare step, in one run.

Three variants, in interleaved rounds whose order is shuffled each round:

* ``bare``: Haystack, nothing instrumented (its tracing disabled, as by default);
* ``openai``: the GenOps OpenAI plugin only (each model call a CLIENT span, roots of their own);
* ``haystack``: the OpenAI and Haystack plugins (GenOps' tracer: the pipeline, its components, the
  agent and its tool as spans and units of work, the model spans under them, rolled-up cost).

The workload is one pipeline run (a ChatPromptBuilder, then an Agent with one tool and two model
calls through OpenAIChatGenerator), on the real OpenAI SDK answering from an in-process
``MockTransport`` (no socket), telemetry exported nowhere through a BatchSpanProcessor. A step is
one model call or one tool execution (3 per run). Haystack runs each tool call on a worker
thread, so the process's CPU time is the headline. See ``_frameworks.py`` for what is measured and
reported.

    .venv/bin/python benchmarks/bench_haystack.py            # ~1 minute (--rounds 41: ~2 minutes)
    .venv/bin/python benchmarks/bench_haystack.py --quick    # smoke run
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _frameworks import Framework, arguments, measure, report  # noqa: E402

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


def _plugin() -> Any:
    from genops_instrumentation_haystack import HaystackInstrumentor

    return HaystackInstrumentor()


FRAMEWORK = Framework(
    title="Haystack", key="haystack", plugin=_plugin, packages=("haystack-ai",),
    workload="One pipeline run (a prompt builder, then an Agent)", results="haystack.md",
)


def main(argv: list[str] | None = None) -> None:
    args = arguments(FRAMEWORK, argv, __doc__ or "")
    pipeline = _pipeline()
    process, thread = measure(FRAMEWORK, lambda: pipeline.run(INPUT), args)
    report(FRAMEWORK, process, thread, args)


if __name__ == "__main__":
    main()
