"""What the GenOps CrewAI plugin adds per agent step, next to CrewAI's bare step, in one run.

Three variants, in interleaved rounds whose order is shuffled each round:

* ``bare``: CrewAI, nothing instrumented (its event bus on, as always; its telemetry and tracing
  off, ``CREWAI_DISABLE_TELEMETRY`` / ``CREWAI_TRACING_ENABLED``, so nothing leaves the machine);
* ``openai``: the GenOps OpenAI plugin only (each model call a CLIENT span, roots of their own);
* ``crewai``: the OpenAI and CrewAI plugins (the crew run, its task, the agent's execution and its
  tool as spans and units of work, read from CrewAI's event bus, the model spans under them,
  rolled-up cost).

The workload is one ``Crew.kickoff`` (one agent, one task, one tool, two model calls) through
CrewAI's native ``LLM(model="gpt-4o-mini")`` (``OpenAICompletion``), on the real OpenAI SDK
answering from the shared local endpoint (``api/testing_openai.py``) as an in-process
``MockTransport`` (no socket): CrewAI builds its own OpenAI client, so the LLM's client is replaced
by one on that transport. Telemetry is exported nowhere through a BatchSpanProcessor. A step is
one model call or one tool execution (3 per run). CrewAI runs its event handlers on a worker pool
(flushed before ``kickoff`` returns), so the process's CPU time is the headline. See
``_frameworks.py`` for what is measured and reported.

CrewAI logs a warning per model call (its approximate input-token count for gpt-4o-mini); the
benchmark raises that logger to ERROR so thousands of lines of stderr do not time the terminal.

    .venv/bin/python benchmarks/bench_crewai.py            # ~1 minute (--rounds 41: ~3 minutes under load)
    .venv/bin/python benchmarks/bench_crewai.py --quick    # smoke run
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _frameworks import Framework, arguments, measure, report  # noqa: E402


def _crew() -> Any:
    os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
    import httpx2
    from crewai import LLM, Agent, Crew, Task
    from crewai.tools import tool
    from openai import OpenAI

    from genops_autoinstrument.api.testing_openai import API_KEY, BASE_URL, MODEL, OpenAIEndpoint

    logging.getLogger("crewai.llms.base_llm").setLevel(logging.ERROR)
    endpoint = OpenAIEndpoint()

    @tool("get_weather")
    def get_weather(city: str) -> str:
        """The current weather of a city."""
        return f"18°C and sunny in {city}"

    llm = LLM(model=MODEL, api_key=API_KEY, base_url=BASE_URL, max_retries=0)
    llm._client = OpenAI(api_key=API_KEY, base_url=BASE_URL, max_retries=0, http_client=httpx2.Client(transport=endpoint.transport("httpx2")))
    agent = Agent(role="Weather reporter", goal="Report the weather", backstory="A concise reporter.", tools=[get_weather], llm=llm)
    task = Task(name="weather-report", description="What is the weather in Paris?", expected_output="One sentence.", agent=agent)
    crew = Crew(agents=[agent], tasks=[task])
    crew.kickoff()
    if len(endpoint.requests) != 2 or not any(m.get("role") == "tool" for m in endpoint.requests[1]["messages"]):
        raise RuntimeError(f"a crew run should be a tool call, the tool, then text: {endpoint.requests}")
    endpoint.requests.clear()
    return crew


def _run(crew: Any) -> None:
    """One kickoff, on a client whose ``with_raw_response`` (CrewAI's path) sees today's ``create``.

    The OpenAI SDK builds ``with_raw_response`` once per resource, around the ``create`` of that
    moment; the warm-up runs come before any variant's plugins, so each run drops that cache and
    the SDK builds it again (a few µs, in every variant), as a client first used after
    ``instrument()`` (the case under genops-run) would have it."""
    vars(crew.agents[0].llm._client.chat.completions).pop("with_raw_response", None)
    crew.kickoff()


def _plugin() -> Any:
    from genops_instrumentation_crewai import CrewAIInstrumentor

    return CrewAIInstrumentor()


FRAMEWORK = Framework(
    title="CrewAI", key="crewai", plugin=_plugin, packages=("crewai",), workload="One `Crew.kickoff` (one agent, one task)", results="crewai.md",
    runs=20,
)


def main(argv: list[str] | None = None) -> None:
    args = arguments(FRAMEWORK, argv, __doc__ or "")
    crew = _crew()
    process, thread = measure(FRAMEWORK, lambda: _run(crew), args)
    report(FRAMEWORK, process, thread, args)


if __name__ == "__main__":
    main()
