"""GenOps plugin for LangChain: each chain run, agent invocation and tool execution as a unit of work.

LangChain's public configure hook (``langchain_core.tracers.context.register_configure_hook``)
adds one callback handler of GenOps' to every run, whoever starts it (LCEL chains, LangChain's
``create_agent`` and other LangGraph graphs, tools, the legacy ``AgentExecutor``). Each chain,
agent and tool run becomes a span and a unit of work (``genops_autoinstrument.api.Runs``): the
parent of the model calls recorded inside it by the provider plugins (the OpenAI plugin under
``ChatOpenAI``…), carrying their rolled-up cost and tokens at its end. A chat-model run opens no
span of its own: the provider plugin's CLIENT span is that step, once.
Must not import LangChain at module level: discovery imports this module without the target.
"""

from __future__ import annotations

import sys
from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor, when_imported

from .package import _instruments, _watched_modules

__all__ = ["LangChainInstrumentor"]

_HOOKS_MODULE = "langchain_core.tracers.context"


def _register(module: Any) -> None:
    from ._handler import install

    install(module)


class LangChainInstrumentor(GenOpsInstrumentor):
    """Adds GenOps' callback handler to every LangChain run through LangChain's configure hook."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        when_imported(self, _HOOKS_MODULE, _register)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        handler = sys.modules.get(f"{__name__}._handler")
        if handler is not None:
            handler.deactivate()
