"""GenOps plugin for the OpenAI Agents SDK: each workflow, agent invocation and tool call as a unit of work.

The SDK's public tracing hook (``agents.add_trace_processor``) adds one trace processor of
GenOps' beside the application's (and the SDK's own exporter, which keeps exporting what it
did). Each trace (a workflow: one ``Runner.run`` or the application's ``with trace(...)``), agent
span, tool (function) span and guardrail span becomes a span and a unit of work
(``genops_autoinstrument.api.Runs``): the parent of the model calls that the OpenAI plugin
records inside it, carrying their rolled-up cost and tokens at its end. The SDK's response and
generation spans open no span of ours: the provider plugin's CLIENT span is that step, once.
The OpenAI model classes' retry advice (``get_retry_advice``, wrapped) makes a GenOps refusal
final for the SDK's opt-in model retries.
Must not import the Agents SDK at module level: discovery imports this module without the target.
"""

from __future__ import annotations

import sys
from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor, when_imported

from ._retries import TARGETS, final_refusal
from .package import _instruments, _watched_modules

__all__ = ["OpenAIAgentsInstrumentor", "processor"]

_TRACING_MODULE = "agents.tracing"


def _register(module: Any) -> None:
    from ._processor import install

    install(module)


def processor() -> Any:
    """GenOps' trace processor, for an application that replaces the SDK's list with
    ``agents.set_trace_processors([...])``: include it there to keep GenOps' spans. Imports the
    Agents SDK's tracing module."""
    from ._processor import genops_processor

    return genops_processor()


class OpenAIAgentsInstrumentor(GenOpsInstrumentor):
    """Adds GenOps' trace processor to the Agents SDK's through its public ``add_trace_processor``."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        when_imported(self, _TRACING_MODULE, _register)
        for module, path in TARGETS:  # opt-in model retries never repeat a refused call
            self.wrap(module, path, final_refusal)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        loaded = sys.modules.get(f"{__name__}._processor")
        if loaded is not None:
            loaded.deactivate()
