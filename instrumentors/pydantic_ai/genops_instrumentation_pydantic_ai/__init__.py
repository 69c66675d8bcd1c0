"""GenOps plugin for pydantic-ai, through pydantic-ai's own OpenTelemetry support.

When the application has not instrumented pydantic-ai itself, the plugin hands GenOps' providers
to pydantic-ai's instrumentation settings (``Agent.instrument_all``) as soon as pydantic-ai is
imported, so every agent run is traced from its first span on: pydantic-ai's ``invoke_agent`` and
``execute_tool`` spans, and its ``chat`` CLIENT span per model call, which the provider plugin
recording the call (the OpenAI plugin under pydantic-ai's OpenAI model…) enriches with cost,
policy and attribution instead of a span of its own. The agent span gets the rolled-up cost of
its calls, and the agent's name is a dimension of their metrics. An application's own choice
(``instrument_all``, ``Agent(instrument=…)``, logfire) is never overridden.
Must not import pydantic-ai at module level: discovery imports this module without the target.
"""

from __future__ import annotations

import sys
from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor, when_imported

from .package import _instruments, _watched_modules

__all__ = ["PydanticAIInstrumentor"]

_AGENT_MODULE = "pydantic_ai"  # once it has finished loading: Agent and InstrumentationSettings are whole


def _install(module: Any) -> None:
    from ._settings import install

    install(module)


class PydanticAIInstrumentor(GenOpsInstrumentor):
    """Gives pydantic-ai's own instrumentation GenOps' providers, unless the application set its own."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        when_imported(self, _AGENT_MODULE, _install)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        settings = sys.modules.get(f"{__name__}._settings")
        if settings is not None:
            settings.uninstall()
