"""An ordinary Haystack pipeline with an Agent: no GenOps import, configured by OPENAI_* variables as usual.

Run it under GenOps without changing it:  genops-run python examples/haystack_pipeline.py
(pip install genops-instrumentation-haystack genops-instrumentation-openai haystack-ai)

GenOps records one trace per pipeline run: a `pipeline` span with the run's rolled-up cost and
tokens, a `prompt_builder` span, an `invoke_agent weather_agent` span with the agent's cost, an
`execute_tool get_weather` span, and the two model calls as CLIENT spans carrying `gen_ai.agent.name`.
"""

import os

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # Haystack's own usage telemetry, not GenOps'

from haystack import Pipeline  # noqa: E402
from haystack.components.agents import Agent  # noqa: E402
from haystack.components.builders import ChatPromptBuilder  # noqa: E402
from haystack.components.generators.chat import OpenAIChatGenerator  # noqa: E402
from haystack.dataclasses import ChatMessage  # noqa: E402
from haystack.tools import tool  # noqa: E402


@tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


# Reads OPENAI_API_KEY; the base URL from OPENAI_BASE_URL, as the OpenAI SDK does.
generator = OpenAIChatGenerator(model="gpt-4o-mini", api_base_url=os.environ.get("OPENAI_BASE_URL"), generation_kwargs={"max_tokens": 60})
pipeline = Pipeline()
pipeline.add_component("prompt_builder", ChatPromptBuilder(template=[ChatMessage.from_user("What is the weather in {{city}}?")], required_variables="*"))
pipeline.add_component("weather_agent", Agent(chat_generator=generator, tools=[get_weather], system_prompt="You are a concise assistant."))
pipeline.connect("prompt_builder.prompt", "weather_agent.messages")

result = pipeline.run({"prompt_builder": {"city": "Paris"}})
for message in result["weather_agent"]["messages"]:
    for tool_result in message.tool_call_results:
        print(f"tool {tool_result.origin.tool_name}: {tool_result.result}")
print(f"answer: {result['weather_agent']['last_message'].text}")
