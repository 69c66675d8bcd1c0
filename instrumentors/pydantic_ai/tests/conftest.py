"""Shared fixtures: a pydantic-ai agent on its OpenAI chat model, on the real OpenAI SDK against
the kit's local chat-completions endpoint (``OpenAIEndpoint``: an httpx transport answering like
api.openai.com, tool calls included), the OpenAI and pydantic-ai plugins instrumented as
genops-run activates them, and the real OpenTelemetry SDK (``rec``, team "search").

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool, and any other request with text; each answer's usage is fixed by its kind, so tokens
and cost are exact.
"""

from __future__ import annotations

from typing import Any

import httpx

from genops_autoinstrument.api.testing_openai import API_KEY, MODEL, REPLY, OpenAIEndpoint, framework_fixtures
from genops_instrumentation_openai import OpenAIInstrumentor
from genops_instrumentation_pydantic_ai import PydanticAIInstrumentor


class Endpoint(OpenAIEndpoint):
    def __init__(self) -> None:
        super().__init__(first_reply=REPLY)

    def model(self, **client_options: Any) -> Any:
        """pydantic-ai's OpenAI chat model on an AsyncOpenAI client (the SDK's default retries unless told)."""
        import openai
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.openai import OpenAIProvider

        client = openai.AsyncOpenAI(api_key=API_KEY, http_client=httpx.AsyncClient(transport=self.transport()), **client_options)
        return OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=client))

    def agent(self, name: str = "weather", **options: Any) -> Any:
        """An agent with one tool: a run makes two model calls (the tool call, then the answer)."""
        from pydantic_ai import Agent

        agent = Agent(self.model(), name=name, instructions="Answer weather questions with the tool.", **options)

        @agent.tool_plain
        def get_weather(city: str) -> str:
            """The current weather in a city."""
            return f"18°C and sunny in {city}"

        return agent


instrumented, settings, rec, endpoint, h = framework_fixtures(OpenAIInstrumentor, PydanticAIInstrumentor, endpoint=Endpoint, env={"GENOPS_TEAM": "search"})
