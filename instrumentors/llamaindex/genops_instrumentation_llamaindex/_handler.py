"""The span handler LlamaIndex's dispatcher calls for every span, and its registration.

Imported only once ``llama_index_instrumentation`` (LlamaIndex's dispatcher) has been imported.
LlamaIndex calls a handler's ``span_enter`` and ``span_exit``/``span_drop`` in the context of the
span (the same coroutine for async methods, workflow runs and their steps), so a unit entered at
its start is left at its end. A span is recognised by the class of its instance (looked up by
name in its MRO: nothing of LlamaIndex is imported here) and by its method:

- a workflow run (``<Workflow>.run``): an agent's (``FunctionAgent``, ``ReActAgent``…) is
  ``invoke_agent {name}``; a multi-agent ``AgentWorkflow`` or the application's own workflow is
  a span named after its class. The steps of the application's workflows are spans too; an
  agent's own steps are not (they attribute their calls to the agent whose turn it is);
- a tool call (``BaseTool.call``/``acall``): ``execute_tool {name}``, with the agent's tool-call id;
- a query or chat engine call (``query``, ``chat``…): a span named after the engine's class;
- an LLM or embedding span opens nothing: the provider plugin's CLIENT span is that step, under
  the unit of the span that made it. Every other span (splitters, retrievers…) is transparent.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

from llama_index_instrumentation.dispatcher import active_instrument_tags
from llama_index_instrumentation.span_handlers import BaseSpanHandler
from pydantic import PrivateAttr

from genops_autoinstrument.api import (
    GEN_AI_AGENT_NAME,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_DESCRIPTION,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    OPERATION_EXECUTE_TOOL,
    OPERATION_INVOKE_AGENT,
    Runs,
    internal_error,
    semconv,
)

GEN_AI_AGENT_DESCRIPTION = "gen_ai.agent.description"

# Base classes (name, module) by what their spans are. Looked up in an instance's MRO.
_KINDS = (
    ("BaseWorkflowAgent", "llama_index.core.agent.workflow", "agent"),
    ("AgentWorkflow", "llama_index.core.agent.workflow", "agents"),
    ("Workflow", "workflows", "workflow"),
    ("BaseTool", "llama_index.core.tools", "tool"),
    ("BaseLLM", "llama_index.core.base.llms", "model"),
    ("BaseEmbedding", "llama_index.core.base.embeddings", "model"),
    ("BaseQueryEngine", "llama_index.core.base", "query"),
    ("BaseChatEngine", "llama_index.core.chat_engine", "chat"),
)
_WORKFLOWS = frozenset({"agent", "agents", "workflow"})
_METHODS = {
    "tool": frozenset({"call", "acall"}),
    "query": frozenset({"query", "aquery"}),
    "chat": frozenset({"chat", "achat", "stream_chat", "astream_chat"}),
}
_MAX_OPEN = 10_000  # spans whose end never arrives must not grow the table without bound


@lru_cache(maxsize=1024)
def _kind(cls: type) -> str | None:
    for base in cls.__mro__:
        for name, module, kind in _KINDS:
            if base.__name__ == name and base.__module__.startswith(module):
                return kind
    return None


def _method(span_id: str) -> str:
    """``Class.method`` of a dispatcher span id (``Class.method-<uuid4>``)."""
    return span_id[:-37] if len(span_id) > 37 and span_id[-37] == "-" else span_id


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _event(bound_args: Any) -> Any:
    """The workflow event a step was called with (its ``ev`` argument, whatever its name)."""
    arguments = getattr(bound_args, "arguments", None) or {}
    for value in arguments.values():
        if hasattr(value, "current_agent_name") or hasattr(value, "tool_id"):
            return value
    return None


@dataclass
class _Span:
    """What the handler keeps of an open span it made a unit or a step: for the spans under it."""

    kind: str
    instance: int = 0
    agent: str | None = None  # the agent whose turn it is (a multi-agent workflow's steps)
    tool_call: tuple[str, str] | None = None  # (tool name, call id) of an agent's call_tool step


class GenOpsSpanHandler(BaseSpanHandler[Any]):
    """Opens a unit per agent run, workflow run, tool call and query; LLM spans enter their parent's."""

    _runs: Any = PrivateAttr(default=None)
    _spans: Any = PrivateAttr(default=None)
    _guard: Any = PrivateAttr(default=None)
    _active: bool = PrivateAttr(default=True)

    def __init__(self) -> None:
        super().__init__()
        self._runs = Runs("llamaindex")
        self._spans = {}
        self._guard = threading.Lock()
        self._active = True

    @classmethod
    def class_name(cls) -> str:
        return "GenOpsSpanHandler"

    # --- what the dispatcher calls ----------------------------------------------------------------
    def span_enter(self, id_: str, bound_args: Any, instance: Any = None, parent_id: str | None = None, tags: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        if not self._active:
            return
        try:
            self._enter(id_, bound_args, instance, parent_id, tags if tags is not None else active_instrument_tags.get())
        except Exception as error:
            internal_error("llamaindex span start", error)

    def span_exit(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None, **kwargs: Any) -> None:
        self._end(id_, None)

    def span_drop(self, id_: str, bound_args: Any, instance: Any = None, err: BaseException | None = None, **kwargs: Any) -> None:
        self._end(id_, err)

    # The dispatcher's span objects: none (GenOps' units are its spans).
    def new_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
        return None

    # --- internals ----------------------------------------------------------------------------------
    def _enter(self, key: str, bound_args: Any, instance: Any, parent: str | None, tags: Mapping[str, Any] | None) -> None:
        kind = _kind(type(instance)) if instance is not None else None
        method = _method(key)
        name = method.rpartition(".")[2]
        trusted = self._trusted(tags)
        with self._guard:
            outer = self._spans.get(parent) if parent is not None else None
        if kind in _WORKFLOWS and method == f"{type(instance).__name__}.run":
            self._workflow(key, parent, kind, instance, trusted)
        elif kind in _METHODS and name in _METHODS[kind]:
            if kind == "tool":
                if outer is not None and outer.kind == "tool" and outer.instance == id(instance):
                    self._runs.enter(key, parent, trusted, hidden=True)  # call inside acall: one tool span
                    return
                self._tool(key, parent, instance, outer, trusted)
            else:
                self._runs.start(key, parent, type(instance).__name__, attribution=trusted)
            self._keep(key, _Span(kind, id(instance)))
        elif kind == "model":
            self._runs.enter(key, parent, trusted)
        elif instance is None and outer is not None and outer.kind in _WORKFLOWS:
            self._step(key, parent, name, bound_args, outer, trusted)
        else:
            self._runs.enter(key, parent, trusted, hidden=True)

    def _workflow(self, key: str, parent: str | None, kind: str, workflow: Any, trusted: dict[str, str]) -> None:
        if kind == "agent":
            agent = _text(getattr(workflow, "name", None)) or type(workflow).__name__
            attributes = {semconv.GEN_AI_OPERATION_NAME: OPERATION_INVOKE_AGENT, GEN_AI_AGENT_NAME: agent}
            description = _text(getattr(workflow, "description", None))
            if description:
                attributes[GEN_AI_AGENT_DESCRIPTION] = description
            attribution = {**trusted, GEN_AI_AGENT_NAME: agent}
            self._runs.start(key, parent, agent, span_name=f"{OPERATION_INVOKE_AGENT} {agent}", attributes=attributes, attribution=attribution)
            self._keep(key, _Span(kind, id(workflow), agent))
            return
        self._runs.start(key, parent, type(workflow).__name__, attribution=trusted)
        self._keep(key, _Span(kind, id(workflow), _text(getattr(workflow, "root_agent", None)) if kind == "agents" else None))

    def _step(self, key: str, parent: str | None, name: str, bound_args: Any, workflow: _Span, trusted: dict[str, str]) -> None:
        if workflow.kind == "workflow":  # a step of the application's own workflow: a unit
            self._runs.start(key, parent, name, attribution=trusted)
            self._keep(key, _Span("step"))
            return
        event = _event(bound_args)
        agent = _text(getattr(event, "current_agent_name", None))
        if agent and workflow.kind == "agents":
            workflow.agent = agent  # a hand-off: the agent whose turn it is now
        agent = workflow.agent
        step = _Span("step", agent=agent)
        tool, call_id = _text(getattr(event, "tool_name", None)), _text(getattr(event, "tool_id", None))
        if tool and call_id:
            step.tool_call = (tool, call_id)
        self._runs.enter(key, parent, {**trusted, GEN_AI_AGENT_NAME: agent} if agent else trusted)
        self._keep(key, step)

    def _tool(self, key: str, parent: str | None, tool: Any, outer: _Span | None, trusted: dict[str, str]) -> None:
        metadata = getattr(tool, "metadata", None)
        name = _text(getattr(metadata, "name", None)) or type(tool).__name__
        attributes: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: OPERATION_EXECUTE_TOOL, GEN_AI_TOOL_NAME: name, GEN_AI_TOOL_TYPE: "function"}
        description = _text(getattr(metadata, "description", None))
        if description:
            attributes[GEN_AI_TOOL_DESCRIPTION] = description
        if outer is not None and outer.tool_call is not None and outer.tool_call[0] == name:
            attributes[GEN_AI_TOOL_CALL_ID] = outer.tool_call[1]
        self._runs.start(key, parent, name, span_name=f"{OPERATION_EXECUTE_TOOL} {name}", attributes=attributes, attribution=trusted)

    def _trusted(self, tags: Mapping[str, Any] | None) -> dict[str, str]:
        """The ``genops.*`` attribution keys of the span's instrument tags that GENOPS_BAGGAGE_KEYS
        trusts (only spans tagged with such keys pay for the look-up)."""
        if not tags or not any(isinstance(key, str) and key.startswith("genops.") for key in tags):
            return {}
        return self._runs.trusted(tags)

    def _keep(self, key: str, span: _Span) -> None:
        with self._guard:
            if len(self._spans) < _MAX_OPEN:
                self._spans[key] = span

    def _end(self, key: str, error: BaseException | None) -> None:
        try:
            with self._guard:
                self._spans.pop(key, None)
            self._runs.end(key, error)
        except Exception as internal:
            internal_error("llamaindex span end", internal)


_handler = GenOpsSpanHandler()


def install(module: Any) -> None:
    """Add the handler to LlamaIndex's root dispatcher (once per execution of the module)."""
    _handler._active = True
    dispatcher = module.get_dispatcher()
    if not any(handler is _handler for handler in dispatcher.span_handlers):
        dispatcher.add_span_handler(_handler)


def deactivate() -> None:
    """The plugin was uninstrumented: LlamaIndex keeps calling the handler, which records nothing."""
    _handler._active = False


def handler() -> GenOpsSpanHandler:
    """The handler LlamaIndex calls for every span (tests, diagnostics)."""
    return _handler
