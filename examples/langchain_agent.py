"""An ordinary LangChain agent: no GenOps import, configured by OPENAI_* variables as usual.

Run it under GenOps without changing it:  genops-run python examples/langchain_agent.py
(pip install genops-instrumentation-langchain genops-instrumentation-openai langchain langchain-openai)

GenOps records one trace per agent run: an `invoke_agent weather_agent` span with the run's
rolled-up cost and tokens, an `execute_tool get_weather` span, and the two model calls as CLIENT
spans carrying `gen_ai.agent.name`.
"""

from langchain.agents import create_agent
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI


@tool
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


model = ChatOpenAI(model="gpt-4o-mini", max_tokens=60)  # reads OPENAI_API_KEY and OPENAI_BASE_URL
agent = create_agent(model, tools=[get_weather], system_prompt="You are a concise assistant.", name="weather_agent")

result = agent.invoke({"messages": [{"role": "user", "content": "What is the weather in Paris?"}]})
for message in result["messages"]:
    if message.type == "tool":
        print(f"tool {message.name}: {message.content}")
print(f"answer: {result['messages'][-1].content}")
