"""An ordinary CrewAI crew: no GenOps import, configured by OPENAI_* variables as usual.

Run it under GenOps without changing it:  genops-run python examples/crewai_crew.py
(pip install genops-instrumentation-crewai genops-instrumentation-openai crewai)

GenOps records one trace per crew run: a `crew` span with the run's rolled-up cost and tokens, a
`weather-report` task span, an `invoke_agent Weather reporter` span, an `execute_tool get_weather`
span, and the two model calls as CLIENT spans carrying `gen_ai.agent.name`.
"""

from crewai import LLM, Agent, Crew, Task
from crewai.tools import tool


@tool("get_weather")
def get_weather(city: str) -> str:
    """The current weather of a city."""
    return f"18°C and sunny in {city}"


llm = LLM(model="gpt-4o-mini", max_tokens=60)  # reads OPENAI_API_KEY and OPENAI_BASE_URL
reporter = Agent(role="Weather reporter", goal="Report the weather", backstory="A concise reporter.", tools=[get_weather], llm=llm)
task = Task(name="weather-report", description="What is the weather in Paris?", expected_output="One sentence.", agent=reporter)
result = Crew(agents=[reporter], tasks=[task]).kickoff()
for output in result.tasks_output:
    print(f"task {output.name}: {output.raw}")
print(f"answer: {result.raw}")
