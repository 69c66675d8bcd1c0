"""GenOps plugin for the OpenAI Python SDK: OpenAI, Azure OpenAI and OpenAI-compatible servers.

Patches the resource methods (sync and async) of chat completions (create, parse; ``stream()``
goes through create), the Responses API (create, parse; ``stream()`` goes through create),
legacy completions and embeddings. ``with_raw_response`` / ``with_streaming_response`` call the
same methods, so they are recorded once too.

Must not import the SDK at module level: discovery imports this module without the target.
"""

from __future__ import annotations

from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor

from . import _wrappers as w
from .package import _instruments, _watched_modules

__all__ = ["OpenAIInstrumentor"]

# (module, "Class.method", wrapper). Modules are the SDK's public re-exports, stable across 1.x-3.x;
# a target a given version does not have is skipped by GenOpsInstrumentor.wrap.
_TARGETS: tuple[tuple[str, str, Any], ...] = (
    ("openai.resources.chat", "Completions.create", w.CHAT.sync),
    ("openai.resources.chat", "AsyncCompletions.create", w.CHAT.async_),
    ("openai.resources.chat", "Completions.parse", w.CHAT_PARSE.sync),
    ("openai.resources.chat", "AsyncCompletions.parse", w.CHAT_PARSE.async_),
    ("openai.resources.beta.chat", "Completions.parse", w.CHAT_PARSE.sync),  # openai < 1.92
    ("openai.resources.beta.chat", "AsyncCompletions.parse", w.CHAT_PARSE.async_),
    ("openai.resources.responses", "Responses.create", w.RESPONSES.sync),
    ("openai.resources.responses", "AsyncResponses.create", w.RESPONSES.async_),
    ("openai.resources.responses", "Responses.parse", w.RESPONSES_PARSE.sync),
    ("openai.resources.responses", "AsyncResponses.parse", w.RESPONSES_PARSE.async_),
    ("openai.resources.beta.responses", "Responses.create", w.RESPONSES.sync),
    ("openai.resources.beta.responses", "AsyncResponses.create", w.RESPONSES.async_),
    ("openai.resources.completions", "Completions.create", w.COMPLETIONS.sync),
    ("openai.resources.completions", "AsyncCompletions.create", w.COMPLETIONS.async_),
    ("openai.resources.embeddings", "Embeddings.create", w.EMBEDDINGS.sync),
    ("openai.resources.embeddings", "AsyncEmbeddings.create", w.EMBEDDINGS.async_),
    ("openai.lib.streaming.chat", "ChatCompletionStream.close", w.helper_close),
    ("openai.lib.streaming.chat", "AsyncChatCompletionStream.close", w.async_helper_close),
    ("openai.lib.streaming.responses", "ResponseStream.close", w.helper_close),
    ("openai.lib.streaming.responses", "AsyncResponseStream.close", w.async_helper_close),
)


class OpenAIInstrumentor(GenOpsInstrumentor):
    """Records every OpenAI SDK model call through the GenOps engine."""

    watched_modules = _watched_modules
    environment_variables = (w.STREAM_USAGE,)

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        for module, path, wrapper in _TARGETS:
            self.wrap(module, path, wrapper)
