"""What the GenOps LangChain plugin adds per agent step, next to LangChain's bare step, in one run.

Three variants, in interleaved rounds whose order is shuffled each round:

* ``bare``: LangChain, nothing instrumented;
* ``openai``: the GenOps OpenAI plugin only (each model call a CLIENT span, roots of their own);
* ``langchain``: the OpenAI and LangChain plugins (runs as spans and units of work, the model
  spans under them, rolled-up cost).

The workload is one ``create_agent`` run with one tool and two model calls, on the real OpenAI SDK
answering from an in-process ``MockTransport`` (no socket), telemetry exported nowhere through a
BatchSpanProcessor. A step is one model call or one tool execution (3 per run). See ``_frameworks.py`` for what is
measured and reported (process and application-thread CPU per step, medians, IQR, paired differences).

    .venv/bin/python benchmarks/bench_langchain.py            # ~1 minute (--rounds 41: ~2 minutes)
    .venv/bin/python benchmarks/bench_langchain.py --quick    # smoke run
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _frameworks import Framework, arguments, measure, report  # noqa: E402


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _answers() -> tuple[bytes, bytes]:
    base = {"id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5q", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini-2024-07-18"}
    call = {"id": "call_Qx7Lm2Vt0001", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    tool = {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}, "finish_reason": "tool_calls"}], "usage": _usage(81, 18)}
    text = {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": "18°C and sunny."}, "finish_reason": "stop"}], "usage": _usage(24, 9)}
    return json.dumps(tool).encode(), json.dumps(text).encode()


def _agent() -> Any:
    import httpx
    from langchain.agents import create_agent
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    tool_answer, text_answer = _answers()

    def handler(request: httpx.Request) -> httpx.Response:
        answered = b'"role":"tool"' in request.content or b'"role": "tool"' in request.content
        return httpx.Response(200, content=text_answer if answered else tool_answer, headers={"content-type": "application/json"})

    @tool
    def get_weather(city: str) -> str:
        """The current weather of a city."""
        return f"18°C and sunny in {city}"

    model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-bench", max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    return create_agent(model, tools=[get_weather], name="weather_agent")


def _plugin() -> Any:
    from genops_instrumentation_langchain import LangChainInstrumentor

    return LangChainInstrumentor()


FRAMEWORK = Framework(
    title="LangChain", key="langchain", plugin=_plugin, packages=("langchain-core", "langchain", "langgraph", "langchain-openai"),
    workload="One `create_agent` run", results="langchain.md",
)


def main(argv: list[str] | None = None) -> None:
    args = arguments(FRAMEWORK, argv, __doc__ or "")
    agent = _agent()
    question = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
    process, thread = measure(FRAMEWORK, lambda: agent.invoke(question), args)
    report(FRAMEWORK, process, thread, args)


if __name__ == "__main__":
    main()
