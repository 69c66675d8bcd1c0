"""The callback handler LangChain adds to every run, and its registration.

Imported only once ``langchain_core.tracers.context`` has been imported (it imports the callback
base classes this module needs). LangChain calls a handler's start and end events in the
context of the run (sync runs) or inline in the run's task (``run_inline``, async runs); the
async chain and model end events run in a copy of it (``shielded``), so an async chain run
never becomes GenOps' current scope (it could not be undone from there): its model calls and
tools still nest under it through their parent run id.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, Mapping
from uuid import UUID

from langchain_core.callbacks.base import BaseCallbackHandler

from genops_autoinstrument.api import (
    GEN_AI_AGENT_ID,
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_DESCRIPTION,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    OPERATION_EXECUTE_TOOL,
    OPERATION_INVOKE_AGENT,
    Runs,
    semconv,
)

_HIDDEN_TAG = "langsmith:hidden"  # LangGraph's internal runs (channel writes, routing)
_CREATE_AGENT = "langchain_create_agent"  # `ls_integration` metadata of langchain.agents.create_agent graphs
_AGENT_CLASSES = frozenset({"AgentExecutor", "RunnableAgent", "RunnableMultiActionAgent"})


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _run_name(serialized: Mapping[str, Any] | None, kwargs: Mapping[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if isinstance(name, str) and name:
        return name
    if isinstance(serialized, Mapping):
        name = serialized.get("name")
        if isinstance(name, str) and name:
            return name
        path = serialized.get("id")
        if isinstance(path, list) and path and isinstance(path[-1], str):
            return path[-1]
    return default


def _class_name(serialized: Mapping[str, Any] | None) -> str | None:
    path = serialized.get("id") if isinstance(serialized, Mapping) else None
    return path[-1] if isinstance(path, list) and path and isinstance(path[-1], str) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class GenOpsCallbackHandler(BaseCallbackHandler):
    """Opens a unit per chain, agent and tool run; makes a model call's parent run its scope."""

    run_inline = True  # async managers call it in the run's task, not in an executor thread
    raise_error = False

    def __init__(self) -> None:
        super().__init__()
        self.runs = Runs("langchain")
        self.active = True

    # --- chains and agents --------------------------------------------------------------------
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.active:
            return
        metadata = metadata or {}
        attribution = self.runs.trusted(metadata)
        if tags and _HIDDEN_TAG in tags:
            self.runs.enter(run_id, parent_run_id, attribution, hidden=True)
            return
        name = _run_name(serialized, kwargs, "chain")
        agent = self._agent_name(serialized, metadata, name, parent_run_id)
        attributes: dict[str, Any] = {}
        span_name = name
        if agent is not None:
            name = agent
            span_name = f"{OPERATION_INVOKE_AGENT} {agent}"
            attribution[GEN_AI_AGENT_NAME] = agent
            attributes[semconv.GEN_AI_OPERATION_NAME] = OPERATION_INVOKE_AGENT
            attributes[GEN_AI_AGENT_NAME] = agent
            for key, attribute in (("assistant_id", GEN_AI_AGENT_ID), ("thread_id", GEN_AI_CONVERSATION_ID)):
                value = metadata.get(key)
                if isinstance(value, (str, UUID)) and str(value):
                    attributes[attribute] = str(value)
        self.runs.start(run_id, parent_run_id, name, span_name=span_name, attributes=attributes, attribution=attribution, enter=not _in_event_loop())

    def _agent_name(self, serialized: Any, metadata: Mapping[str, Any], name: str, parent: UUID | None) -> str | None:
        """The agent this run invokes, or None for a plain chain run (or a step inside an agent)."""
        if metadata.get("ls_integration") == _CREATE_AGENT:
            agent = _text(metadata.get("lc_agent_name")) or name
        elif _class_name(serialized) in _AGENT_CLASSES:
            agent = name
        else:
            return None
        # create_agent's metadata is inherited by every run inside the agent: only its outermost
        # run (or a subagent of another name) is the invocation.
        return None if self.runs.attribution(parent).get(GEN_AI_AGENT_NAME) == agent else agent

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.end(run_id, error)

    # --- model calls: recorded by the provider plugins, under their parent run ---------------------
    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if self.active:
            self.runs.enter(run_id, parent_run_id, self.runs.trusted(metadata))

    on_chat_model_start = on_llm_start  # the same for chat models (messages instead of prompts, passed positionally)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.end(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.end(run_id)

    # --- tools ------------------------------------------------------------------------------------
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self.active:
            return
        tool = _run_name(serialized, kwargs, "tool")
        attributes: dict[str, Any] = {semconv.GEN_AI_OPERATION_NAME: OPERATION_EXECUTE_TOOL, GEN_AI_TOOL_NAME: tool, GEN_AI_TOOL_TYPE: "function"}
        call_id = _text(kwargs.get("tool_call_id"))
        if call_id:
            attributes[GEN_AI_TOOL_CALL_ID] = call_id
        description = _text(serialized.get("description")) if isinstance(serialized, Mapping) else None
        if description:
            attributes[GEN_AI_TOOL_DESCRIPTION] = description
        self.runs.start(run_id, parent_run_id, tool, span_name=f"{OPERATION_EXECUTE_TOOL} {tool}", attributes=attributes, attribution=self.runs.trusted(metadata))

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.runs.end(run_id, error)


_handler = GenOpsCallbackHandler()
# LangChain adds the handler a configure hook's variable holds to every run it configures; the
# default value holds it in every context, threads and tasks included.
_variable: contextvars.ContextVar[GenOpsCallbackHandler | None] = contextvars.ContextVar("genops_langchain_handler", default=_handler)


def install(module: Any) -> None:
    """Register the handler with LangChain's configure hooks (once per execution of the module)."""
    _handler.active = True
    hooks = getattr(module, "_configure_hooks", None)
    if hooks is not None and any(entry[0] is _variable for entry in hooks):
        return
    module.register_configure_hook(_variable, True)


def deactivate() -> None:
    """The plugin was uninstrumented: LangChain keeps calling the handler, which records nothing."""
    _handler.active = False


def handler() -> GenOpsCallbackHandler:
    """The handler LangChain adds to every run (tests, diagnostics)."""
    return _handler
