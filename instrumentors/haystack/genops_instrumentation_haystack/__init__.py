"""GenOps plugin for Haystack: each pipeline run, agent invocation and tool execution as a unit of work.

Haystack's public tracing hook (``haystack.tracing.enable_tracing``) takes one tracer for every
span Haystack opens (pipeline runs, component runs, agent runs and steps, tool calls). GenOps'
tracer turns them into units of work (``genops_autoinstrument.api.Runs``): spans that parent
the model calls the provider plugins record (the OpenAI plugin under ``OpenAIChatGenerator``)
and carry their rolled-up cost and tokens. A tracer the application enabled itself is never
replaced. Must not import Haystack at module level: discovery imports this module without it.
"""

from __future__ import annotations

import sys
from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor, when_imported

from .package import _instruments, _watched_modules

__all__ = ["HaystackInstrumentor"]

_TRACER_MODULE = "haystack.tracing.tracer"


def _enable(module: Any) -> None:
    from ._tracer import enable

    enable(module)


class HaystackInstrumentor(GenOpsInstrumentor):
    """Enables GenOps' tracer in Haystack, unless the application enabled a tracer of its own."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        when_imported(self, _TRACER_MODULE, _enable)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        tracer = sys.modules.get(f"{__name__}._tracer")
        if tracer is not None:
            tracer.disable()
