"""GenOps plugin for CrewAI: each crew run, task, agent execution and tool call as a unit of work.

CrewAI reports its work as events on its event bus (``crewai_event_bus``): a crew's kickoff, each
task, each agent execution (``role``), each tool use, with ids that pair a start with its end and
give its parent. The plugin reads them as CrewAI emits them (``CrewAIEventsBus.emit``, wrapped:
CrewAI's listeners run later on worker threads, where a run could not become the scope of the calls
made inside it) and turns them into spans and units of work (``genops_autoinstrument.api.Runs``):
the parents of the model calls the provider plugins record (the OpenAI plugin under CrewAI's native
``OpenAICompletion``), carrying their rolled-up cost and tokens at their end; every call inside an
agent is attributed to its role (``gen_ai.agent.name``). A GenOps refusal is made final for
CrewAI's LLM-level and agent-level retries (``_retries``).
Must not import CrewAI at module level: discovery imports this module without the target.
"""

from __future__ import annotations

from typing import Any, Collection

from genops_autoinstrument.api import GenOpsInstrumentor

from .package import _instruments, _watched_modules

__all__ = ["CrewAIInstrumentor"]


def _emitted(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    from ._recorder import emitted

    return emitted(wrapped, instance, args, kwargs)


def _final_refusals(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    from ._retries import final_refusals

    return final_refusals(wrapped, instance, args, kwargs)


def _afinal_refusals(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    from ._retries import afinal_refusals

    return afinal_refusals(wrapped, instance, args, kwargs)


class CrewAIInstrumentor(GenOpsInstrumentor):
    """Records CrewAI's events as runs; makes GenOps refusals final for CrewAI's retries."""

    watched_modules = _watched_modules

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def patch(self) -> None:
        self.wrap("crewai.events.event_bus", "CrewAIEventsBus.emit", _emitted)
        # CrewAI's LLM-level retry, as its LLM classes call it (imported by name into base_llm).
        self.wrap("crewai.llms.base_llm", "run_with_rate_limit_retry", _final_refusals)
        self.wrap("crewai.llms.base_llm", "arun_with_rate_limit_retry", _afinal_refusals)
