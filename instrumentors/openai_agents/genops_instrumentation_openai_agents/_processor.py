"""GenOps' trace processor, and its registration with the Agents SDK.

Imported only once ``agents.tracing`` has been imported. The SDK calls a processor's events
synchronously, in the context of the code that starts or finishes the span: a trace and an agent
span start and end in the run's own task (``Runner.run``, the run loop of ``run_streamed``, the
application's ``with trace(...)``), a tool or guardrail span in the task that runs it, a response
span in the task that calls the model. A unit made GenOps' current scope at its start is
therefore current for the model calls and tools started under it (tasks copy the context), and
its end restores what was current before. Runs are keyed by the SDK's ids: a span's parent is
its parent span, else its trace; spans that are no step of ours (the SDK's task and turn spans,
custom spans) only pass their parent's scope on to what runs under them.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping

from agents.tracing import processor_interface, span_data

from genops_autoinstrument.api import (
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    OPERATION_EXECUTE_TOOL,
    OPERATION_INVOKE_AGENT,
    Runs,
    internal_error,
    semconv,
)

# GenAI semantic conventions for a workflow (the SDK's trace). TODO(semconv): with the others.
OPERATION_INVOKE_WORKFLOW = "invoke_workflow"
GEN_AI_WORKFLOW_NAME = "gen_ai.workflow.name"
_OTHER_ERROR = "_OTHER"  # error.type when the SDK tells only a message (its spans carry no exception)

# Spans whose step a lower layer records (the OpenAI plugin's CLIENT span), and spans with nothing under them.
_MODEL_SPANS = (span_data.ResponseSpanData, span_data.GenerationSpanData)
_LEAF_SPANS = (span_data.HandoffSpanData, span_data.MCPListToolsSpanData)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class GenOpsTracingProcessor(processor_interface.TracingProcessor):
    """Opens a unit per workflow, agent, tool and guardrail span; makes a model call's agent its scope."""

    def __init__(self) -> None:
        self.runs = Runs("openai-agents")
        self.active = True

    # --- traces: the workflow ---------------------------------------------------------------------
    def on_trace_start(self, trace: Any) -> None:
        if not self.active:
            return
        name = _text(getattr(trace, "name", None)) or "workflow"
        attributes = {semconv.GEN_AI_OPERATION_NAME: OPERATION_INVOKE_WORKFLOW, GEN_AI_WORKFLOW_NAME: name}
        group = _text(getattr(trace, "group_id", None))
        if group:
            attributes[GEN_AI_CONVERSATION_ID] = group
        attribution = self.runs.trusted(_mapping(getattr(trace, "metadata", None)))
        self.runs.start(trace.trace_id, None, name, span_name=f"{OPERATION_INVOKE_WORKFLOW} {name}", attributes=attributes, attribution=attribution)

    def on_trace_end(self, trace: Any) -> None:
        self.runs.end(trace.trace_id)

    # --- spans ------------------------------------------------------------------------------------
    def on_span_start(self, span: Any) -> None:
        if not self.active:
            return
        try:
            data = span.span_data
            key, parent = span.span_id, span.parent_id or span.trace_id
            if isinstance(data, _MODEL_SPANS):
                self.runs.enter(key, parent)  # the provider plugin records the call, under this run
            elif isinstance(data, span_data.AgentSpanData):
                self._agent(span, data.name, key, parent)
            elif isinstance(data, span_data.FunctionSpanData):
                tool = _text(data.name) or "tool"
                attributes = {semconv.GEN_AI_OPERATION_NAME: OPERATION_EXECUTE_TOOL, GEN_AI_TOOL_NAME: tool, GEN_AI_TOOL_TYPE: "function"}
                self.runs.start(key, parent, tool, span_name=f"{OPERATION_EXECUTE_TOOL} {tool}", attributes=attributes)
            elif isinstance(data, span_data.GuardrailSpanData):
                guardrail = _text(data.name) or "guardrail"
                self.runs.start(key, parent, guardrail, span_name=f"guardrail {guardrail}")
            elif not isinstance(data, _LEAF_SPANS):
                self.runs.enter(key, parent, hidden=True)  # task, turn, custom spans: their parent's
        except Exception as error:
            internal_error("openai-agents span start", error)

    def _agent(self, span: Any, name: Any, key: str, parent: str) -> None:
        agent = _text(name) or "agent"
        # A run resumed from a saved state has a trace this process never saw start: its metadata
        # comes with each span.
        attribution = {**self.runs.trusted(_mapping(getattr(span, "trace_metadata", None))), GEN_AI_AGENT_NAME: agent}
        attributes = {semconv.GEN_AI_OPERATION_NAME: OPERATION_INVOKE_AGENT, GEN_AI_AGENT_NAME: agent}
        self.runs.start(key, parent, agent, span_name=f"{OPERATION_INVOKE_AGENT} {agent}", attributes=attributes, attribution=attribution)

    def on_span_end(self, span: Any) -> None:
        try:
            error = span.error
            if error is not None:
                self._failed(span.span_id, error)
        except Exception as internal:
            internal_error("openai-agents span end", internal)
        self.runs.end(span.span_id)

    def _failed(self, key: str, error: Any) -> None:
        """The SDK's span error (a message and data, no exception) as the unit span's status."""
        unit = self.runs.unit(key)
        if unit is None:
            return
        from opentelemetry.trace import Status, StatusCode

        message = error.get("message") if isinstance(error, Mapping) else None
        unit.span.set_attribute(semconv.ERROR_TYPE, _OTHER_ERROR)
        unit.span.set_status(Status(StatusCode.ERROR, str(message or "")[:256]))

    # --- the rest of the interface: nothing buffered here (the engine exports GenOps' spans) --------
    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        return None


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


_processor = GenOpsTracingProcessor()
_registered: list[Any] = []  # the trace provider the processor was added to (the SDK's global one)
_lock = threading.Lock()


def install(module: Any) -> None:
    """Add the processor to the SDK's trace provider, once per provider (``add_trace_processor``
    appends: the application's processors and the SDK's exporter stay as they are)."""
    if not hasattr(module, "add_trace_processor") or not hasattr(module, "get_trace_provider"):
        return  # an `agents` package that is not the OpenAI Agents SDK
    _processor.active = True
    with _lock:
        provider = module.get_trace_provider()
        if _registered and _registered[0] is provider:
            return
        module.add_trace_processor(_processor)
        _registered[:] = [provider]


def deactivate() -> None:
    """The plugin was uninstrumented: the SDK keeps calling the processor, which records nothing."""
    _processor.active = False


def genops_processor() -> GenOpsTracingProcessor:
    """The processor the plugin adds (tests, diagnostics, ``set_trace_processors`` lists)."""
    return _processor
