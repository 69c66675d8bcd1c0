"""GenOps' Haystack tracer: Haystack's spans as GenOps units of work, and its enabling.

Imported only once ``haystack.tracing.tracer`` has been imported (it subclasses Haystack's
``Tracer`` and ``Span``). Haystack opens every span with ``tracer.trace(name, tags, parent_span)``
as a ``with`` block, so a run starts and ends in the same context: each one becomes GenOps'
current scope for its block (calls, tasks and ``asyncio.to_thread`` jobs inside it belong to it).

What becomes a span: a pipeline run, a component run, an agent run (``invoke_agent``), a tool
call (``execute_tool``) and other operations Haystack adds (hooks). What does not: a model-call
step (a generator or embedder component, an agent's ``llm`` step, a component's internal chat
generator call), whose provider plugin's CLIENT span is that step, once; an agent's ``step``,
whose model calls and tools are the agent's children; and an Agent component, whose agent run
is that step (and takes the component's name). Content tags are never recorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
from types import ModuleType
from typing import Any, Iterator, Mapping

from haystack.tracing.tracer import Span, Tracer

from genops_autoinstrument.api import (
    GEN_AI_AGENT_NAME,
    GEN_AI_TOOL_DESCRIPTION,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    OPERATION_EXECUTE_TOOL,
    OPERATION_INVOKE_AGENT,
    Runs,
    internal_error,
    semconv,
)

log = logging.getLogger("genops")

_PIPELINE = "haystack.pipeline.run"
_COMPONENT = "haystack.component.run"
_AGENT = "haystack.agent.run"
_TOOL = "haystack.agent.step.tool"
_HOOK = "haystack.agent.hook"
# Operations that are one model call (its provider plugin's span) or a grouping of the agent's steps.
_STEPS = frozenset({"haystack.agent.step", "haystack.agent.step.llm", "haystack.chat_generator.run"})
_MODEL_COMPONENTS = ("Generator", "Embedder")  # class-name suffixes of Haystack's model-call components
_AGENT_CLASS = ("haystack.components.agents.agent", "Agent")
_PRIMITIVE = (bool, str, int, float)
_MAX_CLASSES = 1024


class GenOpsSpan(Span):
    """A Haystack span: the key of its GenOps run (or step), with what its children need to know."""

    def __init__(self, runs: Runs, kind: str, name: str) -> None:
        self._runs = runs
        self.kind = kind  # "run", "agent component", "tool" or "step"
        self.name = name

    def set_tag(self, key: str, value: Any) -> None:
        try:
            unit = self._runs.unit(self)
            if unit is not None and isinstance(value, _PRIMITIVE):
                unit.span.set_attribute(key, value)
        except Exception as error:
            internal_error("haystack span tag", error)

    def set_content_tag(self, key: str, value: Any) -> None:
        """Content (inputs, outputs, messages) is never recorded through Haystack's tags."""

    def raw_span(self) -> Any:
        """The OpenTelemetry span of this run (this object for a step that has none)."""
        unit = self._runs.unit(self)
        return unit.span if unit is not None else self


_current: contextvars.ContextVar[GenOpsSpan | None] = contextvars.ContextVar("genops_haystack_span", default=None)


class GenOpsTracer(Tracer):
    """Haystack's tracer: a GenOps run per span, skipping the model-call steps recorded below."""

    def __init__(self) -> None:
        self.runs = Runs("haystack")
        self.active = True
        self._classes: dict[str, bool] = {}

    @contextlib.contextmanager
    def trace(self, operation_name: str, tags: dict[str, Any] | None = None, parent_span: Span | None = None) -> Iterator[Span]:
        span = self._open(operation_name, tags or {}, parent_span)
        token = _current.set(span)
        try:
            yield span
        except BaseException as error:
            self.runs.end(span, error)
            raise
        else:
            self.runs.end(span)
        finally:
            try:
                _current.reset(token)
            except ValueError:  # the block ended in another context than it began in
                pass

    def current_span(self) -> Span | None:
        return _current.get()

    # --- internals ----------------------------------------------------------------------------------
    def _open(self, operation: str, tags: Mapping[str, Any], parent_span: Any) -> GenOpsSpan:
        """Start the run (or step) of one Haystack span; never raises."""
        parent = parent_span if isinstance(parent_span, GenOpsSpan) else _current.get()
        span = GenOpsSpan(self.runs, "step", operation)
        if not self.active:
            return span
        try:
            if operation in _STEPS:
                self.runs.enter(span, parent)
            elif operation == _COMPONENT:
                self._component(span, tags, parent)
            elif operation == _AGENT:
                self._agent(span, tags, parent)
            elif operation == _TOOL:
                self._tool(span, tags, parent)
            else:
                self._other(span, operation, tags, parent)
        except Exception as error:
            internal_error("haystack span start", error)
        return span

    def _component(self, span: GenOpsSpan, tags: Mapping[str, Any], parent: GenOpsSpan | None) -> None:
        name = _text(tags.get("haystack.component.name")) or "component"
        type_name = _text(tags.get("haystack.component.type")) or ""
        span.name = name
        if self._is_agent(tags.get("haystack.component.fully_qualified_type"), type_name):
            span.kind = "agent component"  # its agent run is this step, under this name
            self.runs.enter(span, parent)
        elif type_name.endswith(_MODEL_COMPONENTS):
            self.runs.enter(span, parent)  # the provider plugin's span is this step
        else:
            span.kind = "run"
            self.runs.start(span, parent, name, attributes=_scalars(tags))

    def _agent(self, span: GenOpsSpan, tags: Mapping[str, Any], parent: GenOpsSpan | None) -> None:
        # A standalone Agent has no name: it takes its pipeline component's, or its tool's.
        name = parent.name if parent is not None and parent.kind in ("agent component", "tool") else "agent"
        span.kind, span.name = "run", name
        attributes = {**_scalars(tags), semconv.GEN_AI_OPERATION_NAME: OPERATION_INVOKE_AGENT, GEN_AI_AGENT_NAME: name}
        self.runs.start(span, parent, name, span_name=f"{OPERATION_INVOKE_AGENT} {name}", attributes=attributes, attribution={GEN_AI_AGENT_NAME: name})

    def _tool(self, span: GenOpsSpan, tags: Mapping[str, Any], parent: GenOpsSpan | None) -> None:
        name = _text(tags.get("haystack.tool.name")) or "tool"
        span.kind, span.name = "tool", name
        attributes: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: OPERATION_EXECUTE_TOOL, GEN_AI_TOOL_NAME: name, GEN_AI_TOOL_TYPE: "function"}
        description = _text(tags.get("haystack.tool.description"))
        if description:
            attributes[GEN_AI_TOOL_DESCRIPTION] = description
        self.runs.start(span, parent, name, span_name=f"{OPERATION_EXECUTE_TOOL} {name}", attributes=attributes)

    def _other(self, span: GenOpsSpan, operation: str, tags: Mapping[str, Any], parent: GenOpsSpan | None) -> None:
        """A pipeline run (named by its metadata's ``name``), a hook, or an operation Haystack adds later."""
        attribution: dict[str, str] = {}
        name = operation
        if operation == _PIPELINE:
            metadata = tags.get("haystack.pipeline.metadata")
            metadata = metadata if isinstance(metadata, Mapping) else {}
            name = _text(metadata.get("name")) or "pipeline"
            attribution = self.runs.trusted(metadata)
        elif operation == _HOOK:
            name = f"hook {_text(tags.get('haystack.agent.hook.name')) or 'hook'}"
        span.kind, span.name = "run", name
        self.runs.start(span, parent, name, attributes=_scalars(tags), attribution=attribution)

    def _is_agent(self, qualified: Any, type_name: str) -> bool:
        """Whether a component's class is Haystack's Agent or a subclass of it (cached by class name)."""
        if not isinstance(qualified, str):
            return type_name == _AGENT_CLASS[1]
        known = self._classes.get(qualified)
        if known is None:
            agent = getattr(sys.modules.get(_AGENT_CLASS[0]), _AGENT_CLASS[1], None)
            module, _, attribute = qualified.rpartition(".")
            cls = getattr(sys.modules.get(module), attribute, None)
            if isinstance(cls, type) and isinstance(agent, type):
                known = issubclass(cls, agent)
            else:
                known = type_name == _AGENT_CLASS[1]
            if len(self._classes) < _MAX_CLASSES:
                self._classes[qualified] = known
        return known


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _scalars(tags: Mapping[str, Any]) -> dict[str, Any]:
    """The tags that are plain values (names, types, limits); inputs, specs and metadata are not."""
    return {key: value for key, value in tags.items() if isinstance(value, _PRIMITIVE) and isinstance(key, str)}


_tracer = GenOpsTracer()


def enable(module: ModuleType) -> None:
    """Enable GenOps' tracer in Haystack (``module``: ``haystack.tracing.tracer``), unless a tracer
    the application enabled itself is in place: that one is kept."""
    _tracer.active = True
    proxy = getattr(module, "tracer", None)
    current = getattr(proxy, "actual_tracer", None)
    if current is _tracer:
        return
    if current is not None and type(current).__name__ != "NullTracer":
        log.info("haystack: the application's tracer %s is enabled; GenOps records Haystack's model calls without its runs", type(current).__name__)
        return
    module.enable_tracing(_tracer)


def disable() -> None:
    """The plugin was uninstrumented: Haystack's tracing is disabled again if GenOps' tracer is the one enabled."""
    _tracer.active = False
    module = sys.modules.get("haystack.tracing.tracer")
    proxy = getattr(module, "tracer", None)
    if module is not None and getattr(proxy, "actual_tracer", None) is _tracer:
        module.disable_tracing()


def tracer() -> GenOpsTracer:
    """GenOps' Haystack tracer (tests, diagnostics)."""
    return _tracer
