"""Shared fixtures: Haystack's OpenAIChatGenerator on the real OpenAI SDK against the kit's local
chat-completions endpoint (``OpenAIEndpoint``: an httpx transport answering like api.openai.com,
tool calls included), both plugins instrumented, and the real OpenTelemetry SDK (``rec``).

The endpoint answers a request that offers tools and has no tool result yet with a call of the
first tool (arguments from ``tool_arguments``), and any other request with text; each answer's
usage is fixed by its kind, so tokens and cost are exact.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # Haystack's usage telemetry: no network in tests

from genops_autoinstrument.api.testing_openai import API_KEY, MODEL, OpenAIEndpoint, framework_fixtures  # noqa: E402
from genops_instrumentation_haystack import HaystackInstrumentor  # noqa: E402
from genops_instrumentation_openai import OpenAIInstrumentor  # noqa: E402


class Endpoint(OpenAIEndpoint):
    def generator(self, **kwargs: Any) -> Any:
        """Haystack's OpenAIChatGenerator sending to this endpoint (Haystack's default retries unless given)."""
        from haystack.components.generators.chat import OpenAIChatGenerator
        from haystack.utils import Secret

        return OpenAIChatGenerator(model=MODEL, api_key=Secret.from_token(API_KEY), api_base_url="http://localhost.test/v1", http_client_kwargs={"transport": self.transport()}, **kwargs)


instrumented, settings, rec, endpoint, h = framework_fixtures(OpenAIInstrumentor, HaystackInstrumentor, endpoint=Endpoint)
