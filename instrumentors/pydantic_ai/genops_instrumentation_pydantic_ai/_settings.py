"""pydantic-ai's instrumentation settings on GenOps' providers, and what GenOps adds to its spans.

pydantic-ai opens its spans with the tracer of the settings ``Agent.instrument_all`` was given;
GenOps gives it tracer and meter providers that follow the providers GenOps records into
(``genops_autoinstrument.api.providers``), so nothing is set up before pydantic-ai's first span
and that span is not lost. As pydantic-ai opens them:

- ``invoke_agent`` (one per agent run): a GenOps run on pydantic-ai's span; the calls inside carry
  ``gen_ai.agent.name`` (a metric dimension, like the ``genops.*`` attribution) and the span gets
  their rolled-up ``genops.cost.total`` before pydantic-ai ends it;
- ``chat`` (one CLIENT span per model call): the provider plugin that records the call inside it
  enriches it instead of a span of its own; pydantic-ai's token histogram and its own cost
  estimate are dropped and GenOps records the call's metrics with the agent as a dimension, so
  tokens and cost are counted once.
"""

from __future__ import annotations

from typing import Any, ContextManager, Mapping

from genops_autoinstrument.api import capture_content, internal_error

_OPERATION = "gen_ai.operation.name"
_AGENT_NAME = "gen_ai.agent.name"
# pydantic-ai's instruments that GenOps records itself (gen_ai.client.token.usage with the agent
# as a dimension, genops.cost as the one cost): theirs would count the same call a second time.
DROPPED_INSTRUMENTS = ("gen_ai.client.token.usage", "operation.cost")

_state: dict[str, Any] = {}  # "agent": the Agent class, "settings": the settings GenOps handed it


def _on_span(span: Any, name: str, attributes: Mapping[str, Any]) -> ContextManager[Any] | None:
    from genops_autoinstrument.api.providers import adopt_inference_span, run_on_span

    operation = attributes.get(_OPERATION)
    if operation == "chat":
        adopt_inference_span(span)
        return None
    if operation == "invoke_agent":
        agent = attributes.get(_AGENT_NAME)
        agent = agent if isinstance(agent, str) and agent else "agent"
        return run_on_span(span, agent, {_AGENT_NAME: agent})
    return None


def install(agent_module: Any) -> None:
    """``Agent.instrument_all`` with GenOps' providers, unless the application chose its own."""
    agent_class = getattr(agent_module, "Agent", None)
    if agent_class is None:
        return
    if getattr(agent_class, "_instrument_default", False) is not False:
        return  # instrument_all already called (by the application, logfire…): theirs stands
    try:
        from pydantic_ai.models.instrumented import InstrumentationSettings

        from genops_autoinstrument.api.providers import following_meter_provider, following_tracer_provider

        settings = InstrumentationSettings(
            tracer_provider=following_tracer_provider(on_span=_on_span),
            meter_provider=following_meter_provider(drop=DROPPED_INSTRUMENTS),
            include_content=capture_content(),  # prompts and completions only on the standard opt-in
            include_binary_content=False,
        )
        agent_class.instrument_all(settings)
        _state.update(agent=agent_class, settings=settings)
    except Exception as error:
        internal_error("pydantic-ai instrumentation settings", error)


def uninstall() -> None:
    """Take GenOps' settings back, if they are still the ones in force."""
    agent_class = _state.pop("agent", None)
    settings = _state.pop("settings", None)
    if agent_class is not None and getattr(agent_class, "_instrument_default", None) is settings:
        agent_class.instrument_all(False)
