"""GenOps plugin for DSPy: one recorded call per ``dspy.LM`` call, whichever engine sends it.

DSPy 3.4's default engine (its vendored ``lm15``) sends requests on bare sockets, where no SDK or
HTTP-library hook sees them, so the call is recorded at DSPy's own boundary: ``LM.__call__``,
``acall``, ``forward`` and ``aforward`` all run through ``dspy.clients.execution.execute`` /
``aexecute``, which this plugin wraps. The call begins (policy, budget) once DSPy has found no
cached answer and before its engine is chosen, so a cache hit costs nothing and records nothing,
and a blocked call sends nothing. Lower layers (the OpenAI SDK under DSPy's LiteLLM engine, the
wire layer) see the call as recorded and do not record it again.
Must not import DSPy at module level: discovery imports this module without the target.
"""

from __future__ import annotations

from typing import Collection

from genops_autoinstrument.api import GenOpsInstrumentor

from .package import _instruments, _watched_modules

__all__ = ["DSPyInstrumentor"]

_EXECUTION = "dspy.clients.execution"


class DSPyInstrumentor(GenOpsInstrumentor):
    """Wraps ``dspy.clients.execution.execute`` / ``aexecute`` and their engine selection."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        from . import _wrappers as w

        self.wrap(_EXECUTION, "execute", w.execute)
        self.wrap(_EXECUTION, "aexecute", w.aexecute)
        self.wrap(_EXECUTION, "_engine", w.engine)
