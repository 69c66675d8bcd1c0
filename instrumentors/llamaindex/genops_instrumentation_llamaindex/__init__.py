"""GenOps plugin for LlamaIndex: each agent run, workflow run, query and tool call as a unit of work.

LlamaIndex's public instrumentation hook (a span handler on the root dispatcher,
``llama_index.core.instrumentation.get_dispatcher().add_span_handler``) is told of every span
LlamaIndex opens: workflow and agent runs, their steps, tool calls, query and chat engines, LLM
calls. Agent runs, workflow runs (and the steps of the application's own workflows), tool calls
and query/chat engine calls become spans and units of work (``genops_autoinstrument.api.Runs``):
the parents of the model calls the provider plugins record inside them (the OpenAI plugin under
``llama_index.llms.openai.OpenAI``…), carrying their rolled-up cost and tokens at their end. An LLM
span opens no span of its own: the provider plugin's CLIENT span is that step, once.

LlamaIndex's OpenAI LLM retries a rate-limit error three times with back-off, GenOps' budget
refusal included; the plugin makes a refusal final there (``_retries``).
Must not import LlamaIndex at module level: discovery imports this module without the target.
"""

from __future__ import annotations

import sys
from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor, when_imported

from .package import _instruments, _watched_modules

__all__ = ["LlamaIndexInstrumentor"]

_DISPATCHER_MODULE = "llama_index_instrumentation"  # where LlamaIndex keeps its root dispatcher
# LlamaIndex's OpenAI LLMs build their tenacity retry decorator per call from these modules' name.
_RETRYING_MODULES = ("llama_index.llms.openai.base", "llama_index.llms.openai.responses")


def _register(module: Any) -> None:
    from ._handler import install

    install(module)


class LlamaIndexInstrumentor(GenOpsInstrumentor):
    """Adds GenOps' span handler to LlamaIndex's root dispatcher; makes refusals final for retries."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        from ._retries import final_refusals

        when_imported(self, _DISPATCHER_MODULE, _register)
        for module in _RETRYING_MODULES:
            self.wrap(module, "create_retry_decorator", final_refusals)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        handler = sys.modules.get(f"{__name__}._handler")
        if handler is not None:
            handler.deactivate()
