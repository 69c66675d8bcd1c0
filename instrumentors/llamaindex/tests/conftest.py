"""Shared fixtures: LlamaIndex's OpenAI LLM on the real OpenAI SDK against the kit's local
chat-completions endpoint (``OpenAIEndpoint``: an httpx transport answering like api.openai.com,
JSON or Server-Sent Events, tool calls included), both plugins instrumented, and the real
OpenTelemetry SDK (``rec``).

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool (arguments from ``tool_arguments``), and any other request with text; each answer's
usage is fixed by its kind, so tokens and cost are exact. A stream ends with the usage chunk when
the request asks for it (``stream_options.include_usage``), as OpenAI's does.
"""

from __future__ import annotations

from typing import Any

import httpx

from genops_autoinstrument.api.testing_openai import API_KEY, MODEL, OpenAIEndpoint, framework_fixtures
from genops_instrumentation_llamaindex import LlamaIndexInstrumentor
from genops_instrumentation_openai import OpenAIInstrumentor


class Endpoint(OpenAIEndpoint):
    def llm(self, **kwargs: Any) -> Any:
        """LlamaIndex's OpenAI LLM sending to this endpoint."""
        from llama_index.llms.openai import OpenAI

        transport = self.transport()
        return OpenAI(model=MODEL, api_key=API_KEY, http_client=httpx.Client(transport=transport), async_http_client=httpx.AsyncClient(transport=transport), **kwargs)


instrumented, settings, rec, endpoint, h = framework_fixtures(OpenAIInstrumentor, LlamaIndexInstrumentor, endpoint=Endpoint)
