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
(3 per run). See ``_frameworks.py`` for what is
measured and reported (process and application-thread CPU per step, medians, IQR, paired differences).

    .venv/bin/python benchmarks/bench_openai_agents.py            # ~1 minute (--rounds 41: ~2 minutes)
    .venv/bin/python benchmarks/bench_openai_agents.py --quick    # smoke run
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _frameworks import Framework, arguments, measure, report  # noqa: E402


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


def _plugin() -> Any:
    from genops_instrumentation_openai_agents import OpenAIAgentsInstrumentor

    return OpenAIAgentsInstrumentor()


FRAMEWORK = Framework(
    title="OpenAI Agents SDK", key="agents", plugin=_plugin, packages=("openai-agents",), workload="One `Runner.run`", results="openai_agents.md"
)


def main(argv: list[str] | None = None) -> None:
    args = arguments(FRAMEWORK, argv, __doc__ or "")
    os.environ.pop("OPENAI_API_KEY", None)  # the SDK's exporter keeps its spans on this machine
    from agents import Runner

    agent = _agent()
    loop = asyncio.new_event_loop()
    try:
        process, thread = measure(FRAMEWORK, lambda: loop.run_until_complete(Runner.run(agent, "What is the weather in Paris?")), args)
    finally:
        loop.close()
    report(FRAMEWORK, process, thread, args)


if __name__ == "__main__":
    main()
