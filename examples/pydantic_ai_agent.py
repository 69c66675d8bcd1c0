"""An ordinary pydantic-ai agent: no GenOps import, configured by OPENAI_* variables as usual.

Run it under GenOps without changing it:  genops-run python examples/pydantic_ai_agent.py
(pip install genops-instrumentation-pydantic-ai genops-instrumentation-openai "pydantic-ai-slim[openai]")

GenOps turns on pydantic-ai's own OpenTelemetry instrumentation with GenOps' providers (the
application did not instrument pydantic-ai itself), so one agent run is one trace of pydantic-ai's
spans: `invoke_agent weather_agent` with the run's rolled-up `genops.cost.total`,
`execute_tool get_weather`, and one `chat gpt-4o-mini` CLIENT span per model call, carrying the
call's cost, policy and attribution; `genops.cost` and `gen_ai.client.token.usage` have the agent
as a dimension.
"""

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel

model = OpenAIChatModel("gpt-4o-mini")  # Chat Completions; reads OPENAI_API_KEY and OPENAI_BASE_URL
agent = Agent(model, name="weather_agent", instructions="You are a concise assistant.")


@agent.tool_plain
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


result = agent.run_sync("What is the weather in Paris?")
for message in result.new_messages():
    for part in message.parts:
        if part.part_kind == "tool-return":
            print(f"tool {part.tool_name}: {part.content}")
print(f"answer: {result.output}")
