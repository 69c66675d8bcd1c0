"""Shared fixtures: the OpenAI Agents SDK on the real OpenAI SDK against the kit's local endpoint
(``OpenAIEndpoint``: an httpx2 transport answering like api.openai.com's Responses and Chat
Completions APIs, tool calls included), the OpenAI and Agents SDK plugins instrumented, and the
real OpenTelemetry SDK (``rec``).

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool (arguments from ``tool_arguments``), any other request with text ("Hello." before a
tool result, ``reply`` after); each answer's usage is fixed by its kind, so tokens and cost are
exact. The SDK's own trace exporter stays registered, as in any application; without
``OPENAI_API_KEY`` it sends nothing.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest

from genops_autoinstrument.api.testing_openai import API_KEY, BASE_URL, MODEL, OpenAIEndpoint, framework_fixtures
from genops_instrumentation_openai import OpenAIInstrumentor
from genops_instrumentation_openai_agents import OpenAIAgentsInstrumentor


class Endpoint(OpenAIEndpoint):
    def __init__(self) -> None:
        super().__init__(first_reply="Hello.")

    def client(self, **kwargs: Any) -> Any:
        from openai import AsyncOpenAI

        kwargs.setdefault("max_retries", 0)
        return AsyncOpenAI(api_key=API_KEY, base_url=BASE_URL, http_client=httpx2.AsyncClient(transport=self.transport("httpx2")), **kwargs)

    def model(self, api: str = "responses", **kwargs: Any) -> Any:
        from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel

        factory = OpenAIResponsesModel if api == "responses" else OpenAIChatCompletionsModel
        return factory(model=MODEL, openai_client=self.client(**kwargs))


@pytest.fixture(autouse=True)
def _no_trace_export(monkeypatch):
    """The SDK's own exporter stays registered but has no key: it sends nothing off the machine."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


instrumented, settings, rec, endpoint, h = framework_fixtures(OpenAIInstrumentor, OpenAIAgentsInstrumentor, endpoint=Endpoint)
