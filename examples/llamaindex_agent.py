"""An ordinary LlamaIndex agent: no GenOps import, configured by OPENAI_* variables as usual.

Run it under GenOps without changing it:  genops-run python examples/llamaindex_agent.py
(pip install genops-instrumentation-llamaindex genops-instrumentation-openai llama-index-core llama-index-llms-openai)

GenOps records one trace per agent run: an `invoke_agent weather_agent` span with the run's
rolled-up cost and tokens, an `execute_tool get_weather` span, and the two model calls as CLIENT
spans carrying `gen_ai.agent.name`.
"""

import asyncio

from llama_index.core.agent.workflow import FunctionAgent
from llama_index.llms.openai import OpenAI


def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


async def main() -> None:
    llm = OpenAI(model="gpt-4o-mini", max_tokens=60)  # reads OPENAI_API_KEY and OPENAI_API_BASE
    agent = FunctionAgent(name="weather_agent", tools=[get_weather], llm=llm, system_prompt="You are a concise assistant.")
    result = await agent.run(user_msg="What is the weather in Paris?")
    for call in result.tool_calls:
        print(f"tool {call.tool_name}: {call.tool_output.content}")
    print(f"answer: {result}")


asyncio.run(main())
