"""An ordinary OpenAI Agents SDK app: no GenOps import, a model on an OpenAI-compatible endpoint.

Run it under GenOps without changing it:
    EXAMPLE_BASE_URL=http://127.0.0.1:8400/v1 EXAMPLE_API_KEY=sk-local genops-run python examples/openai_agents_app.py
(pip install genops-instrumentation-openai-agents genops-instrumentation-openai openai-agents)

GenOps records one trace per workflow: an `invoke_workflow Agent workflow` span, under it an
`invoke_agent weather_agent` span with the run's rolled-up cost and tokens, an
`execute_tool get_weather` span, and the two model calls as CLIENT spans carrying
`gen_ai.agent.name`. The SDK's own tracing is left as it is (with an OpenAI key in
OPENAI_API_KEY it also sends its traces to OpenAI, as without GenOps).
"""

import asyncio
import os

from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, function_tool
from openai import AsyncOpenAI


@function_tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


client = AsyncOpenAI(base_url=os.environ["EXAMPLE_BASE_URL"], api_key=os.environ["EXAMPLE_API_KEY"])
agent = Agent(
    name="weather_agent",
    instructions="You are a concise assistant.",
    tools=[get_weather],
    model=OpenAIResponsesModel(os.environ.get("EXAMPLE_MODEL_NAME", "gpt-4o-mini"), client),
    model_settings=ModelSettings(max_tokens=60),
)


async def main() -> None:
    result = await Runner.run(agent, "What is the weather in Paris?")
    for item in result.new_items:
        if item.type == "tool_call_output_item":
            print(f"tool get_weather: {item.output}")
    print(f"answer: {result.final_output}")


asyncio.run(main())
