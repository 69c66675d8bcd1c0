"""Shared fixtures: LangChain's ChatOpenAI on the real OpenAI SDK against the kit's local
chat-completions endpoint (``OpenAIEndpoint``: an httpx transport answering like api.openai.com,
tool calls included), both plugins instrumented, and the real OpenTelemetry SDK (``rec``).

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool (arguments from ``tool_arguments``), and any other request with text ("Echo: " and the
question before any tool result); each answer's usage is fixed by its kind, so tokens and cost
are exact.
"""

from __future__ import annotations

from typing import Any

import httpx

from genops_autoinstrument.api.testing_openai import API_KEY, MODEL, OpenAIEndpoint, framework_fixtures
from genops_instrumentation_langchain import LangChainInstrumentor
from genops_instrumentation_openai import OpenAIInstrumentor


class Endpoint(OpenAIEndpoint):
    def model(self, **kwargs: Any) -> Any:
        """LangChain's ChatOpenAI sending to this endpoint (no retries unless told)."""
        from langchain_openai import ChatOpenAI

        transport = self.transport()
        return ChatOpenAI(model=MODEL, api_key=API_KEY, max_retries=0, http_client=httpx.Client(transport=transport), http_async_client=httpx.AsyncClient(transport=transport), **kwargs)


instrumented, settings, rec, endpoint, h = framework_fixtures(OpenAIInstrumentor, LangChainInstrumentor, endpoint=Endpoint)
